"""The loss benchmark: damage is what it says (rates, whole packets), concealment is counted, and a
run writes its table and plots."""

import json

import numpy as np
import pytest

from codeclab.eval.robustness import Condition, conditions, damage_clab, flip_bits, run_robustness
from codeclab.tokens.clab_packet_reader import read_packets
from codeclab.tokens.clab_packets import packet_spans, write_packets

HEADER = {
    "codec": {"name": "t"},
    "sample_rate": 16000,
    "channels": 1,
    "hop_length": 320,
    "codebook_size": 64,
    "audio_length": 500 * 320,
}
CODES = np.random.default_rng(0).integers(0, 64, (4, 500))


def test_bit_flips_happen_at_the_asked_rate():
    data = bytes(20_000)
    flipped = flip_bits(data, 1e-2, np.random.default_rng(1))
    ones = sum(bin(b).count("1") for b in flipped)
    assert 0.8 * 1600 < ones < 1.2 * 1600  # 160,000 bits at 1 %
    assert flip_bits(data, 0.0, np.random.default_rng(1)) == data


def test_packet_loss_drops_whole_packets_and_the_reader_conceals_them():
    blob, _ = write_packets(CODES, HEADER)
    damaged = damage_clab(blob, Condition("loss", 0.2), np.random.default_rng(2))
    header_end, spans = packet_spans(blob)
    assert damaged[:header_end] == blob[:header_end]
    kept = len(packet_spans(damaged)[1])
    assert 0.65 * len(spans) < kept < 0.95 * len(spans)
    clab = read_packets(damaged)
    assert clab.codes.shape == CODES.shape
    assert np.array_equal(clab.codes[:, ~clab.lost], CODES[:, ~clab.lost])
    assert 0.1 < clab.lost.mean() < 0.35


def test_conditions_start_clean_and_refuse_bad_rates():
    assert [c.label for c in conditions([0.1], [1e-3])] == ["clean", "loss 0.1", "ber 0.001"]
    with pytest.raises(ValueError, match="must lie in"):
        conditions([1.5], [])


def test_opus_conceals_lost_packets():
    pytest.importorskip("opuslib", reason="the Opus arm needs opuslib (pip install opuslib)")
    from codeclab.eval.robustness import opus_output

    x = np.sin(np.arange(32000) / 15).astype(np.float32) * 0.3
    clean, concealed, frames = opus_output(x, 16000, 12000, Condition("loss", 0.0), np.random.default_rng(0))
    assert concealed == 0 and clean.shape == x.shape
    lossy, concealed, frames = opus_output(x, 16000, 12000, Condition("loss", 0.3), np.random.default_rng(0))
    # whole 100 ms packets of five 20 ms frames (the last packet may be shorter)
    assert concealed % 5 in (0, frames % 5) and 0 < concealed < frames
    # aligned within 20 samples (the scores align each output to its reference within 10 ms)
    assert (
        max(np.corrcoef(x[1000:30000], clean[1000 + lag : 30000 + lag])[0, 1] for lag in range(-20, 21))
        > 0.95
    )


@pytest.mark.slow
def test_a_run_writes_the_table_and_plots(tmp_path):
    pytest.importorskip("pystoi", reason="STOI needs pystoi")
    report = run_robustness(
        ["codeclab-tiny:random_init=true"],
        ["tests/assets/speech/it_IT_m_Carlo__conf-getpin.flac"],
        tmp_path,
        [0.2],
        [1e-3],
        log=lambda *_: None,
    )
    rows = report["results"]
    assert [r["condition"] for r in rows] == ["clean", "loss 0.2", "ber 0.001"]
    assert rows[0]["concealed_percent"] == 0 and rows[1]["concealed_percent"] > 0
    assert json.loads((tmp_path / "results.json").read_text())["results"] == rows
    assert (tmp_path / "plots" / "loss" / "stoi.png").is_file()
