"""R15 (reliability report 2026-12-04): header values that Python itself refuses to parse (an integer of
thousands of digits) and a weights digest that is not text are format errors, not internal errors."""

from __future__ import annotations

import pytest

from codeclab.catalog.fingerprint import open_recorded_codec
from codeclab.tokens.clab_format import ClabFormatError, parse_header


def test_a_five_thousand_digit_integer_is_a_format_error():
    with pytest.raises(ClabFormatError, match="x.clab: unreadable .clab header"):
        parse_header(b'{"n_q": ' + b"9" * 5000 + b"}", "x.clab")


def test_a_weights_digest_that_is_not_text_is_a_value_error():
    with pytest.raises(ValueError, match="not text"):
        open_recorded_codec({"name": "codeclab-tiny", "random_init": True, "weights_sha256": 5})


def test_a_record_without_a_digest_is_refused_before_the_model_is_built(monkeypatch):
    import codeclab.catalog.ref as spec_module

    def never(*args, **kwargs):
        raise AssertionError("the codec was built before the record was refused")

    monkeypatch.setattr(spec_module.CodecRef, "load", never)
    with pytest.raises(ValueError, match="does not give its weights' sha256"):
        open_recorded_codec({"name": "encodec-24khz", "random_init": True})
