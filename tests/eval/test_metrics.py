import shutil
import subprocess

import numpy as np
import pytest

from codeclab.audio.io import load_audio
from codeclab.audio.signals import synthetic_speech
from codeclab.eval import metrics as M

TEXT = "the morning train to the coast leaves at seven fifteen please close the window"
USABLE = [m for m, reason in M.metric_status(M.DEFAULT_METRICS).items() if not reason]


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Natural-sounding English (flite's slt voice) when flite exists; a synthetic signal otherwise."""
    if shutil.which("flite"):
        path = tmp_path_factory.mktemp("speech") / "slt.wav"
        subprocess.run(
            [
                "flite",
                "-voice",
                "slt",
                "-t",
                "The morning train to the coast leaves at seven fifteen. Please close the window.",
                "-o",
                str(path),
            ],
            check=True,
        )
        return load_audio(path, 16000)[0]
    return synthetic_speech(4.0, 16000, seed=1).numpy()[0]


def noisy(x, snr_db, seed=0):
    noise = np.random.default_rng(seed).standard_normal(len(x)).astype(np.float32)
    return x + noise * np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))


def test_identical_signals_give_perfect_scores(speech):
    scores = M.compute(speech, speech, 16000, USABLE, TEXT, "en")
    perfect = {
        "pesq_wb": 4.64,
        "pesq_nb": 4.55,
        "stoi": 1.0,
        "si_sdr": 100.0,
        "mel_distance": 0.0,
        "stft_distance": 0.0,
        "speaker_sim": 1.0,
        "f0_rmse_cents": 0.0,
        "f0_corr": 1.0,
    }
    for name, value in perfect.items():
        if name in scores:
            assert scores[name] == pytest.approx(value, abs=0.01), name
    if "dnsmos" in scores:
        assert scores["dnsmos"] == scores["dnsmos_reference"]
    if "wer" in scores:
        assert scores["wer"] == scores["wer_reference"]


# On one clip, DNSMOS SIG (it rates the speech itself; BAK rates the noise) and P.808 are not monotone
# in the SNR: measured SIG 3.06, 3.27, 2.94, 1.21 and P.808 2.68, 2.20, 2.29, 2.15 at 30, 15, 5, -5 dB.
# Only their end points are ordered.
ENDPOINTS_ONLY = {"dnsmos_sig", "dnsmos_p808"}
# Frame-error rates move by whole frames: 1 % of the frames is within noise (VDE measured 0.015, 0.013,
# 0.026, 0.082).
TOLERANCE = {"f0_vde": 0.01, "f0_gpe": 0.01, "f0_ffe": 0.01}
# crepe keeps the pitch of this clip within 20 % down to -5 dB: its gross pitch error stays 0.
MAY_NOT_CHANGE = {"f0_gpe"}


def test_rising_noise_makes_every_metric_worse(speech):
    levels = [30, 15, 5, -5]
    runs = [M.compute(speech, noisy(speech, snr), 16000, [m for m in USABLE if m != "wer"]) for snr in levels]
    for name in runs[0]:
        if name.endswith("_reference"):
            continue
        values = [r[name] for r in runs]
        sign = 1 if M.SPECS[name].higher_is_better else -1
        quality = [sign * v for v in values]
        if name not in ENDPOINTS_ONLY:
            slack = TOLERANCE.get(name, 1e-6)
            assert all(b <= a + slack for a, b in zip(quality, quality[1:])), (name, values)
        assert quality[-1] < quality[0] or (name in MAY_NOT_CHANGE and quality[-1] <= quality[0]), (
            name,
            values,
        )


@pytest.mark.slow  # 110 s on 2 cores
@pytest.mark.skipif("wer" not in USABLE or not shutil.which("flite"), reason="needs pocketsphinx and flite")
def test_word_error_rate_rises_with_noise_in_expectation(speech):
    """A single decode is a noisy statistic (WER saturates near 1 and fluctuates); its mean over noise draws rises."""
    means = []
    for snr in (40, 25, 10, -5):
        means.append(
            np.mean(
                [M.word_error_rate(TEXT, M.transcribe(noisy(speech, snr, seed), 16000)) for seed in range(4)]
            )
        )
    assert all(b >= a for a, b in zip(means, means[1:])) and means[-1] > means[0], means


def test_word_error_rate_and_si_sdr_basics():
    pytest.importorskip("jiwer")
    pytest.importorskip("whisper_normalizer")
    assert M.word_error_rate("the cat sat", "the cat sat") == 0.0
    assert M.word_error_rate("the cat sat", "a cat sat down") == pytest.approx(2 / 3)
    # the normaliser: case, punctuation, numbers and contractions do not count as errors
    assert M.word_error_rate("It's twenty-one dollars, Mr. Smith!", "it is 21 dollars mister smith") == 0.0
    assert M.word_error_rate("the cat sat", "") == 1.0
    assert np.isnan(M.word_error_rate("...", "anything"))
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert M.si_sdr(x, 3 * x) == 100.0  # scale-invariant


def test_missing_packages_are_skipped_with_a_reason(monkeypatch):
    from codeclab.eval import optional

    monkeypatch.setattr(
        M,
        "available",
        lambda module: (False, f"{module} is not usable (test); {optional.INSTALL.get(module)}"),
    )
    status = M.metric_status(["pesq_wb", "si_sdr"])
    assert status["si_sdr"] == "" and "pip install pesq" in status["pesq_wb"]


def test_codebook_statistics():
    codes = [np.array([[0, 0, 1, 1]]), np.array([[2, 3, 3, 3]])]
    stats = M.codebook_statistics(codes, 8, frame_rate=50.0)
    per = stats["per_codebook"][0]
    assert per["usage"] == 0.5 and per["dead_codes"] == 4
    p = np.array([2, 2, 1, 3]) / 8
    assert per["entropy_bits"] == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert stats["entropy_bitrate"] == pytest.approx(50 * per["entropy_bits"])


def test_silence_nan_and_constant_outputs_fail_every_metric_at_the_worst_score(speech):
    names = [m for m in ("si_sdr", "mel_distance", "stoi", "pesq_wb") if m in USABLE]
    good = M.compute(speech, noisy(speech, 20), 16000, names)
    for broken, reason in (
        (np.zeros_like(speech), "silent"),
        (np.full_like(speech, np.nan), "NaN"),
        (np.full_like(speech, 0.3), "constant"),
    ):
        scores = M.compute(speech, broken, 16000, names)
        assert set(scores.failed) == set(names) and all(reason in r for r in scores.failed.values())
        for name in names:
            better = M.SPECS[name].higher_is_better
            assert (scores[name] < good[name]) if better else (scores[name] > good[name]), (name, reason)
    assert M.si_sdr(speech, np.zeros_like(speech)) == M.SI_SDR_FLOOR  # not the 100 dB of "no noise"


def test_a_truncated_output_is_padded_not_the_reference_cut(speech):
    half = speech[: len(speech) // 2]
    whole = M.compute(speech, speech, 16000, ["si_sdr", "mel_distance"])
    cut = M.compute(speech, half, 16000, ["si_sdr", "mel_distance"])
    assert cut["si_sdr"] < 10 < whole["si_sdr"] and cut["mel_distance"] > whole["mel_distance"] + 1


@pytest.mark.skipif("speaker_sim" not in USABLE, reason="needs resemblyzer")
def test_speaker_similarity_of_noise_is_not_perfect(speech):
    noise = np.random.default_rng(3).standard_normal(len(speech)).astype(np.float32) * 0.1
    scores = M.compute(speech, noise, 16000, ["speaker_sim"])
    assert scores["speaker_sim"] < 0.9 or "speaker_sim" in scores.failed
    silent_ref = M.compute(np.zeros_like(speech), speech, 16000, ["speaker_sim"])
    assert "speaker_sim" in silent_ref.skipped and "speaker_sim" not in silent_ref


@pytest.mark.skipif("f0_vde" not in USABLE, reason="needs torchcrepe")
def test_f0_metrics_of_noise_flag_voicing_errors(speech):
    noise = np.random.default_rng(4).standard_normal(len(speech)).astype(np.float32) * 0.1
    clean = M.compute(speech, speech, 16000, ["f0_vde"])
    scores = M.compute(speech, noise, 16000, ["f0_vde"])
    assert clean["f0_vde"] == 0.0 and clean["f0_ffe"] == 0.0
    assert scores["f0_vde"] > 0.3 and scores["f0_ffe"] >= scores["f0_vde"]
    assert "f0_rmse_cents" in scores.failed or scores["f0_rmse_cents"] > 100


def test_speech_metrics_are_skipped_on_items_not_tagged_speech(speech):
    names = [m for m in ("stoi", "si_sdr", "mel_distance") if m in USABLE]
    scores = M.compute(speech, noisy(speech, 10), 16000, names, speech=False)
    assert "stoi" not in scores and scores.skipped.get("stoi") == "not tagged speech"
    assert "si_sdr" in scores and "mel_distance" in scores


def test_an_output_delayed_by_a_codec_is_aligned_when_asked(speech):
    delay = 480  # 30 ms at 16 kHz
    late = np.concatenate([np.zeros(delay, dtype=np.float32), speech])[: len(speech)]
    plain = M.compute(speech, late, 16000, ["si_sdr"])
    aligned = M.compute(speech, late, 16000, ["si_sdr"], max_delay=800)
    assert aligned.delay == delay and plain.delay == 0
    assert aligned["si_sdr"] > 20 > plain["si_sdr"]
    assert M.estimate_delay(speech, speech, 800) == 0
