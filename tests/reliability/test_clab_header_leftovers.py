"""R15 (reliability report 2026-12-04): header values that Python itself refuses to parse (an integer of
thousands of digits) and a weights digest that is not text are format errors, not internal errors."""

from __future__ import annotations

import pytest

from codeclab.codecs.spec import open_recorded_codec
from codeclab.tokens.clab import ClabFormatError, _parse_header


def test_a_five_thousand_digit_integer_is_a_format_error():
    with pytest.raises(ClabFormatError, match="x.clab: unreadable .clab header"):
        _parse_header(b'{"n_q": ' + b"9" * 5000 + b"}", "x.clab")


def test_a_weights_digest_that_is_not_text_is_a_value_error():
    with pytest.raises(ValueError, match="not text"):
        open_recorded_codec({"name": "codeclab-tiny", "random_init": True, "weights_sha256": 5})
