"""Reconstruction metrics: reference and estimate are mono numpy arrays at the same sample rate.

Each metric resamples as it requires and says so (`MetricSpec.rate`): PESQ-WB at 16 kHz, PESQ-NB at 8 kHz,
STOI at 16 kHz (pystoi works at 10 kHz internally), speaker similarity and DNSMOS at 16 kHz, F0 at 16 kHz
(torchcrepe), WER at 16 kHz (pocketsphinx); SI-SDR, mel and STFT distances at the evaluation rate.

A metric whose optional package is missing is skipped with its reason (`metric_status`).

`compute` scores one item and never drops it silently (docs/benchmarks.md, "Every item scored or named"):
- the estimate is zero-padded or trimmed to the reference's length (the reference is never cut, so a
  codec that drops the end pays for it);
- an estimate with NaN or inf samples, or a silent or constant one, FAILS every metric: the item gets the
  metric's defined worst score (`WORST`) and the failure's reason;
- a metric that cannot score the estimate (PESQ finds no utterance, no speech for the speaker embedding,
  too few voiced frames in both for F0) fails the same way;
- an item the metric cannot score at all is SKIPPED with its reason (not the codec's fault: a silent
  reference, a reference without speech or voiced frames, a speech metric on an item not tagged speech).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codeclab.eval.metric_signal import SI_SDR_FLOOR, mel_distance, si_sdr, stft_distance
from codeclab.eval.metric_speech import (
    MetricFailed,
    NotScorable,
    dnsmos,
    f0_metrics,
    pesq_score,
    speaker_similarity,
    stoi_score,
    transcribe,
    word_error_rate,
)
from codeclab.eval.optional import available

__all__ = [  # the metric functions live in metric_signal and metric_speech; these names stay here too
    "SI_SDR_FLOOR",
    "SPECS",
    "DEFAULT_METRICS",
    "REFERENCE_FREE",
    "MetricFailed",
    "NotScorable",
    "codebook_statistics",
    "compute",
    "estimate_delay",
    "expand",
    "metric_status",
    "mel_distance",
    "pesq_score",
    "si_sdr",
    "stft_distance",
    "stoi_score",
    "transcribe",
    "word_error_rate",
]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    rate: int | None  # the rate the metric runs at; None = the evaluation rate
    requires: tuple[str, ...]
    description: str
    speech: bool = True  # a speech metric: scored only on items tagged speech
    worst: float | None = None  # the score of a failed item; None: the metric's value for a silent output


SILENT_RMS = 1e-5  # -100 dBFS: an output this quiet is silence


SPECS: dict[str, MetricSpec] = {
    "pesq_wb": MetricSpec(
        "pesq_wb", True, 16000, ("pesq",), "PESQ wide-band (ITU-T P.862.2), MOS-LQO 1-4.64", worst=1.0
    ),
    "pesq_nb": MetricSpec(
        "pesq_nb", True, 8000, ("pesq",), "PESQ narrow-band (P.862), MOS-LQO 1-4.55", worst=1.0
    ),
    "stoi": MetricSpec(
        "stoi", True, 16000, ("pystoi",), "short-time objective intelligibility, 0-1", worst=0.0
    ),
    "si_sdr": MetricSpec(
        "si_sdr", True, None, (), "scale-invariant SDR, dB (-100 to 100)", speech=False, worst=SI_SDR_FLOOR
    ),
    "mel_distance": MetricSpec(
        "mel_distance",
        False,
        None,
        (),
        "mean |ln mel| difference (1024-point FFT, hop 256, 80 HTK bands, floor 1e-5; not HiFi-GAN's Slaney mel)",
        speech=False,
    ),
    "stft_distance": MetricSpec(
        "stft_distance",
        False,
        None,
        ("auraloss",),
        "multi-resolution STFT loss (auraloss: spectral convergence + log magnitude)",
        speech=False,
    ),
    "speaker_sim": MetricSpec(
        "speaker_sim", True, 16000, ("resemblyzer",), "cosine of resemblyzer speaker embeddings", worst=0.0
    ),
    **{
        name: MetricSpec(
            name, True, 16000, ("speechmos", "onnxruntime"), f"DNSMOS {what} (output alone), 1-5", worst=1.0
        )
        for name, what in (
            ("dnsmos", "P.835 OVRL"),
            ("dnsmos_sig", "P.835 SIG, the speech"),
            ("dnsmos_bak", "P.835 BAK, the background"),
            ("dnsmos_p808", "P.808 MOS"),
        )
    },
    "f0_rmse_cents": MetricSpec(
        "f0_rmse_cents",
        False,
        16000,
        ("torchcrepe",),
        "RMS F0 error, frames voiced in both, cents",
        worst=1200.0,
    ),
    "f0_corr": MetricSpec(
        "f0_corr", True, 16000, ("torchcrepe",), "correlation of log F0, frames voiced in both", worst=-1.0
    ),
    "f0_vde": MetricSpec("f0_vde", False, 16000, ("torchcrepe",), "voicing decision error, 0-1", worst=1.0),
    "f0_gpe": MetricSpec(
        "f0_gpe", False, 16000, ("torchcrepe",), "gross pitch error (>20 %), 0-1", worst=1.0
    ),
    "f0_ffe": MetricSpec("f0_ffe", False, 16000, ("torchcrepe",), "F0 frame error, 0-1", worst=1.0),
    "wer": MetricSpec(
        "wer",
        False,
        16000,
        ("pocketsphinx", "jiwer", "whisper_normalizer"),
        "word error rate of pocketsphinx (English items with text; jiwer, Whisper's normaliser)",
        worst=1.0,
    ),
}
DEFAULT_METRICS = list(SPECS)
# scores of the output alone (or against a transcript), not distances to the original: the original has its
# own figure for these, which every table shows as its row
REFERENCE_FREE = ("dnsmos", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "wer")
GROUPS = {  # metrics computed together: asking for one reports them all
    "dnsmos": ("dnsmos", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"),
    "f0": ("f0_rmse_cents", "f0_corr", "f0_vde", "f0_gpe", "f0_ffe"),
}


def expand(names: list[str]) -> list[str]:
    """`names` with every metric of a group one of them belongs to (DNSMOS's four scores, the F0 five)."""
    out: list[str] = []
    for name in names:
        group = next((g for g in GROUPS.values() if name in g), (name,))
        out += [m for m in group if m not in out]
    return out


def metric_status(names: list[str]) -> dict[str, str]:
    """name -> "" when usable, else the reason it is skipped."""
    status = {}
    for name in names:
        if name not in SPECS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(SPECS)}")
        reasons = [available(m)[1] for m in SPECS[name].requires]
        status[name] = "; ".join(r for r in reasons if r)
    return status


class ItemScores(dict):
    """One item's scores: metric -> value (for a failed metric, its worst score). `failed` and `skipped`
    map metric -> reason (failed: counted at the worst score; skipped: the item cannot be scored by it)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.delay = 0  # samples the output was moved earlier to align it (compute's max_delay)


def fit_length(estimate: np.ndarray, length: int) -> np.ndarray:
    """The estimate zero-padded or trimmed to the reference's `length` (the reference is never cut)."""
    if len(estimate) >= length:
        return estimate[:length]
    return np.pad(estimate, (0, length - len(estimate)))


def estimate_delay(reference: np.ndarray, estimate: np.ndarray, max_delay: int) -> int:
    """The delay (samples, within +-max_delay) by which `estimate` lags `reference`: the peak of their
    cross-correlation (FFT). 0 when either is silent."""
    if max_delay <= 0 or not np.any(reference) or not np.any(estimate):
        return 0
    n = len(reference) + len(estimate)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(estimate, size) * np.conj(np.fft.rfft(reference, size)), size)
    lags = np.concatenate([corr[: max_delay + 1], corr[-max_delay:]]) if max_delay < size // 2 else corr
    index = int(np.argmax(lags))
    return index if index <= max_delay else index - len(lags)


def align(estimate: np.ndarray, delay: int) -> np.ndarray:
    """`estimate` moved `delay` samples earlier (a positive delay is removed; a negative one padded)."""
    if delay > 0:
        return estimate[delay:]
    if delay < 0:
        return np.concatenate([np.zeros(-delay, dtype=estimate.dtype), estimate])
    return estimate


def signal_problem(x: np.ndarray) -> str | None:
    """Why `x` cannot be scored: NaN or inf samples, silence, a constant; None when it can."""
    if x.size == 0:
        return "empty"
    if not bool(np.isfinite(x).all()):
        return "has NaN or inf samples"
    if float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) < SILENT_RMS:
        return "silent"
    if float(np.std(x, dtype=np.float64)) < SILENT_RMS:
        return "constant"
    return None


def _worst(name: str, reference: np.ndarray, sr: int) -> float:
    """A failed item's score: the spec's worst value, or (distances) the metric's value for silence."""
    worst = SPECS[name].worst
    if worst is not None:
        return worst
    silence = np.zeros_like(reference)
    return (
        mel_distance(reference, silence, sr)
        if name == "mel_distance"
        else stft_distance(reference, silence, sr)
    )


def compute(
    reference: np.ndarray,
    estimate: np.ndarray,
    sr: int,
    names: list[str],
    text: str | None = None,
    language: str | None = None,
    reference_cache: dict | None = None,
    speech: bool = True,
    max_delay: int = 0,
) -> ItemScores:
    """The metrics among `names` (and their groups, `expand`) for one item; see the module docstring
    for how failures and skips are decided. `reference_cache` keeps reference-only results (DNSMOS and
    WER of the original) across codecs; `speech=False` (an item not tagged speech) skips speech metrics.
    `max_delay` > 0 (samples): the output is first aligned to the reference by the cross-correlation
    peak within that range (for codecs that add latency); the delay found is `scores.delay`."""
    reference = reference.astype(np.float32)
    estimate = np.asarray(estimate, dtype=np.float32)
    delay = 0
    if max_delay > 0 and np.isfinite(estimate).all():
        delay = estimate_delay(reference, estimate, max_delay)
        estimate = align(estimate, delay)
    estimate = fit_length(estimate, len(reference))
    cache = reference_cache if reference_cache is not None else {}
    out = ItemScores()
    out.delay = delay
    wanted = expand(names)
    if not speech:
        for name in [m for m in wanted if SPECS[m].speech]:
            out.skipped[name] = "not tagged speech"
        wanted = [m for m in wanted if not SPECS[m].speech]
    if "wer" in wanted and not (text and (language or "en").startswith("en")):
        out.skipped["wer"] = "no English transcript"
        wanted.remove("wer")
    problem = signal_problem(reference)
    if problem is not None:
        for name in wanted:
            out.skipped[name] = f"the reference is {problem}"
        return out
    problem = signal_problem(estimate)
    if problem is not None:
        for name in wanted:
            out.failed[name] = f"the output is {problem}"
    else:
        _score(out, reference, estimate, sr, wanted, text, cache)
    for name, reason in list(out.failed.items()):
        out[name] = _worst(name, reference, sr)
        out.failed[name] = reason
    return out


def _score(
    out: ItemScores,
    reference: np.ndarray,
    estimate: np.ndarray,
    sr: int,
    wanted: list[str],
    text: str | None,
    cache: dict,
) -> None:
    """Run each wanted metric (once per group) into `out`, turning failures into named ones."""
    runners: dict[str, Callable[[], dict[str, float]]] = {
        "pesq_wb": lambda: {"pesq_wb": pesq_score(reference, estimate, sr, "wb")},
        "pesq_nb": lambda: {"pesq_nb": pesq_score(reference, estimate, sr, "nb")},
        "stoi": lambda: {"stoi": stoi_score(reference, estimate, sr)},
        "si_sdr": lambda: {"si_sdr": si_sdr(reference, estimate)},
        "mel_distance": lambda: {"mel_distance": mel_distance(reference, estimate, sr)},
        "stft_distance": lambda: {"stft_distance": stft_distance(reference, estimate, sr)},
        "speaker_sim": lambda: {"speaker_sim": speaker_similarity(reference, estimate, sr)},
        "dnsmos": lambda: _with_reference(cache, "dnsmos", lambda x: dnsmos(x, sr), reference, estimate),
        "f0": lambda: f0_metrics(reference, estimate, sr),
        "wer": lambda: _with_reference(
            cache,
            "wer",
            lambda x: {"wer": word_error_rate(text or "", transcribe(x, sr))},
            reference,
            estimate,
        ),
    }
    done: set[str] = set()
    for name in wanted:
        key = next((g for g, members in GROUPS.items() if name in members), name)
        if key in done:
            continue
        done.add(key)
        members = [m for m in GROUPS.get(key, (name,)) if m in wanted]
        try:
            values = runners[key]()
        except NotScorable as err:
            out.skipped.update(dict.fromkeys(members, str(err)))
            continue
        except MetricFailed as err:
            out.failed.update(dict.fromkeys(members, str(err)))
            continue
        except Exception as err:  # noqa: BLE001 (a benchmark names a failing item; --debug is for the cause)
            out.failed.update(dict.fromkeys(members, f"{type(err).__name__}: {str(err)[:100]}"))
            continue
        group_failure = values.pop("failed", None)
        for member in members:
            value = values.get(member)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                out.failed[member] = group_failure or "undefined for this output"
            else:
                out[member] = float(value)
        for extra, value in values.items():  # reference-side figures (dnsmos_reference, wer_reference)
            if extra.endswith("_reference"):
                out[extra] = value


def _with_reference(cache: dict, key: str, run, reference: np.ndarray, estimate: np.ndarray) -> dict:
    """Scores of the estimate and, computed once per item, of the reference (as `NAME_reference`)."""
    if key not in cache:
        try:
            cache[key] = run(reference)
        except MetricFailed as err:
            raise NotScorable(f"the reference: {err}") from None
    scores = run(estimate)
    scores.update({f"{name}_reference": value for name, value in cache[key].items()})
    return scores


def codebook_statistics(codes: list[np.ndarray], codebook_size: int, frame_rate: float) -> dict:
    """Over all items' codes ([n_q, F] each): per codebook usage (fraction of codes seen), entropy (bits),
    dead codes (never seen); and the entropy-estimated bitrate frame_rate x sum of entropies."""
    from codeclab.tokens.store import code_counts, code_statistics

    counts = code_counts(codes, codes[0].shape[0], codebook_size)
    stats = code_statistics(counts, frame_rate, digits=None)
    per = [{**c, "dead_codes": int((row == 0).sum())} for c, row in zip(stats["per_codebook"], counts)]
    return {"per_codebook": per, "entropy_bitrate": stats["entropy_kbps"] * 1000}
