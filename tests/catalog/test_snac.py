"""The SNAC peer (catalog/peers/snac_codec.py): its row layout against SNAC's own levels and decoder, the
partial-level rule, the Orpheus order, and the refusal when the package is missing."""

from __future__ import annotations

import sys

import pytest
import torch

import codeclab
from codeclab.catalog.peers.snac_codec import DECODE_SEED, orpheus_order


@pytest.fixture(scope="module")
def snac_codec():
    pytest.importorskip("snac", reason="the SNAC peer needs the snac package (codeclab[snac])")
    return codeclab.load_codec("snac-24khz", random_init=True)


def test_decode_equals_snac_own_decoder_on_the_same_codes(snac_codec):
    x = torch.randn(1, 1, 3 * snac_codec.hop_length) * 0.2
    with torch.inference_mode():
        levels = snac_codec.model.encode(x)
        torch.manual_seed(DECODE_SEED)  # the decoder draws noise; the adapter seeds every item so
        reference = snac_codec.model.decode(levels)
    ours = snac_codec.decode(snac_codec.encode(x))
    torch.testing.assert_close(ours, reference[..., : x.shape[-1]])
    assert torch.equal(ours, snac_codec.decode(snac_codec.encode(x)))  # reproducible


def test_rows_ending_inside_a_level_decode_from_the_levels_before_it(snac_codec):
    x = torch.randn(1, 1, 2 * snac_codec.hop_length + 5) * 0.2
    codes = snac_codec.encode(x).codes
    assert snac_codec.levels == [1, 2, 4] and codes.shape[1] == 7
    one, two = snac_codec.decode(codes[:, :1]), snac_codec.decode(codes[:, :2])
    assert torch.equal(one, two)  # level 1 needs both of its rows
    assert not torch.equal(snac_codec.decode(codes[:, :3]), one)


def test_the_orpheus_order_of_a_frame():
    frame = torch.arange(7)[:, None]  # rows: level 0, level 1 (a, b), level 2 (a, b, c, d)
    assert orpheus_order(frame)[:, 0].tolist() == [0, 1, 3, 4, 2, 5, 6]
    with pytest.raises(ValueError, match="7 codes per frame"):
        orpheus_order(torch.zeros(3, 2))


def test_a_missing_package_is_refused_with_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "snac", None)
    with pytest.raises(ImportError, match=r"codeclab\[snac\]"):
        codeclab.load_codec("snac-24khz", random_init=True)
    info = codeclab.codec_info("snac-24khz")
    assert "pip install codeclab[snac]" in info.source and info.num_codebooks == 7
