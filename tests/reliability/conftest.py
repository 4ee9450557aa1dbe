"""Fixtures of the reliability tests."""

from tests.tokens.conftest import base_tokenizer  # noqa: F401 (shared fixture)
