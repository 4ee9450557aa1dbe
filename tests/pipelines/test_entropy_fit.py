"""An entropy model fitted on a store ships beside the weights; encode range codes with it; a lost
packet is concealed and counted; --strict refuses; a damaged model file is named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("constriction", reason="range coding needs constriction")

from codeclab.catalog.loading import load_pretrained, save_pretrained  # noqa: E402
from codeclab.catalog.ref import CodecRef  # noqa: E402
from codeclab.pipelines.clab_files import decode_file, encode_file  # noqa: E402
from codeclab.pipelines.entropy_fit import fit_entropy_model  # noqa: E402
from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus  # noqa: E402
from codeclab.tokens.clab import ClabFormatError, read_clab  # noqa: E402
from codeclab.tokens.store import TokenStore  # noqa: E402
from tests.tokens.test_clab_packets import packets_of  # noqa: E402


@pytest.fixture
def fitted(good_corpus, tmp_path):
    """A small codec directory with an entropy model fitted on the good corpus's codes."""
    import codeclab

    weights = tmp_path / "codec"
    save_pretrained(codeclab.load_codec("codeclab-tiny", random_init=True), weights)
    store = tmp_path / "tokens"
    tokenize_corpus(
        TokenizeOptions(inputs=[str(good_corpus)], out=store, codec=CodecRef(str(weights)), workers=1)
    )
    record = fit_entropy_model(store, weights, heldout=store)
    return weights, store, record


def test_the_model_is_recorded_loaded_and_measured(fitted):
    weights, store, record = fitted
    meta = json.loads((weights / "config.json").read_text())
    assert (
        meta["entropy_model"]["sha256"] == record["sha256"] == load_pretrained(weights).entropy_model().sha256
    )
    assert record["fitted_on"]["items"] == len(TokenStore(store))
    rates = [record["heldout"]["kbps"][str(n)] for n in range(1, 5)]
    assert rates == sorted(rates) and rates[-1] < record["heldout"]["nominal_kbps"]["4"]


def test_a_damaged_or_missing_model_file_is_named(fitted):
    weights, _, _ = fitted
    path = weights / "entropy.safetensors"
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF  # a count changes: the tables no longer match the recorded sha256
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="entropy.safetensors"):
        load_pretrained(weights).entropy_model()
    path.unlink()
    with pytest.raises(FileNotFoundError, match="entropy.safetensors: entropy model missing"):
        load_pretrained(weights)


def test_encode_range_codes_and_a_lost_packet_is_concealed(fitted, good_corpus, tmp_path):
    weights, _, _ = fitted
    spec = CodecRef(str(weights))
    source = good_corpus / "clip6.wav"
    ranged = encode_file(source, tmp_path / "r.clab", spec)
    bits = encode_file(source, tmp_path / "b.clab", spec, coding="bits")
    assert ranged.coding == "range" and bits.coding == "bits"
    assert ranged.payload < bits.payload
    whole = read_clab(tmp_path / "b.clab").codes
    model = load_pretrained(weights).entropy_model()
    assert np.array_equal(read_clab(tmp_path / "r.clab", model=model).codes, whole)

    blob = (tmp_path / "r.clab").read_bytes()
    start, end = packets_of(blob)[3]
    (tmp_path / "lost.clab").write_bytes(blob[:start] + blob[end:])
    done = decode_file(tmp_path / "lost.clab", tmp_path / "lost.wav")
    assert done.concealed_frames == 5 and "packets 3..3 are missing" in done.damage[0]
    decode_file(tmp_path / "r.clab", tmp_path / "whole.wav")
    lost, _ = sf.read(tmp_path / "lost.wav", dtype="float32")
    clean, _ = sf.read(tmp_path / "whole.wav", dtype="float32")
    hop = load_pretrained(weights).hop_length
    assert lost.shape == clean.shape
    assert np.array_equal(lost[: 15 * hop], clean[: 15 * hop])  # a causal decoder: the same until the loss
    assert np.all(lost[18 * hop : 20 * hop] == 0)  # frames 15-19 lost: faded to silence after 3 frames
    assert np.abs(lost[20 * hop :]).max() > 0
    with pytest.raises(ClabFormatError, match="packets 3..3 are missing"):
        decode_file(tmp_path / "lost.clab", tmp_path / "strict.wav", strict=True)


def test_a_file_range_coded_with_other_tables_is_refused(fitted, good_corpus, tmp_path):
    from codeclab.pipelines.entropy_fit import record_entropy_model
    from codeclab.tokens.entropy import EntropyModel

    weights, _, _ = fitted
    encode_file(good_corpus / "clip6.wav", tmp_path / "r.clab", CodecRef(str(weights)))
    other = EntropyModel(np.ones((4, 64), dtype=np.int64))
    record_entropy_model(weights, other, {"fitted_on": "nothing"})
    with pytest.raises(ClabFormatError, match="not this codec's"):
        decode_file(tmp_path / "r.clab", tmp_path / "out.wav")
