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

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from codeclab.audio.io import resample
from codeclab.eval.optional import available, require


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    rate: int | None  # the rate the metric runs at; None = the evaluation rate
    requires: tuple[str, ...]
    description: str
    speech: bool = True  # a speech metric: scored only on items tagged speech
    worst: float | None = None  # the score of a failed item; None: the metric's value for a silent output


SI_SDR_FLOOR = -100.0
SILENT_RMS = 1e-5  # -100 dBFS: an output this quiet is silence


def _at(x: np.ndarray, sr: int, rate: int | None) -> np.ndarray:
    if rate is None or rate == sr:
        return x.astype(np.float32)
    return resample(x[None].astype(np.float32), sr, rate)[0]


def si_sdr(reference: np.ndarray, estimate: np.ndarray, sr: int = 0) -> float:
    """Scale-invariant SDR in dB, within [-100, 100] (100 for identical signals). Energy guard: an
    estimate with no energy (silence, a constant) scores the floor, -100 dB, not the 100 dB that a
    zero target and zero noise would give; NaN only for a reference without energy."""
    ref = reference.astype(np.float64) - reference.mean()
    est = estimate.astype(np.float64) - estimate.mean()
    energy = np.dot(ref, ref)
    if energy <= 0:
        return math.nan
    if np.dot(est, est) <= 1e-12 * energy:
        return SI_SDR_FLOOR
    target = np.dot(est, ref) / energy * ref
    noise = est - target
    noise_energy = np.dot(noise, noise)
    if noise_energy <= 1e-20 * np.dot(target, target):
        return 100.0
    return float(
        np.clip(10 * np.log10(max(np.dot(target, target), 1e-300) / noise_energy), SI_SDR_FLOOR, 100.0)
    )


def mel_distance(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    from codeclab.audio.spectral import mel_distance as _mel

    return float(_mel(torch.from_numpy(reference).float(), torch.from_numpy(estimate).float(), sr))


def stft_distance(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    from codeclab.train.losses import MultiResolutionSTFTLoss

    loss = MultiResolutionSTFTLoss()
    return float(
        loss(torch.from_numpy(estimate).float()[None, None], torch.from_numpy(reference).float()[None, None])
    )


def pesq_score(reference: np.ndarray, estimate: np.ndarray, sr: int, mode: str) -> float:
    """PESQ (P.862.2 wide-band or P.862 narrow-band). Fails (MetricFailed) when PESQ cannot process the
    output (e.g. "No utterances detected"); NotScorable when it cannot process the reference either."""
    pesq = require("pesq")
    rate = 16000 if mode == "wb" else 8000
    ref = _at(reference, sr, rate)
    try:
        return float(pesq.pesq(rate, ref, _at(estimate, sr, rate), mode))
    except Exception as err:  # noqa: BLE001 (pesq raises its own error types and plain ones)
        try:
            pesq.pesq(rate, ref, ref, mode)
        except Exception:  # noqa: BLE001
            raise NotScorable(f"PESQ cannot process the reference ({str(err)[:80]})") from None
        raise MetricFailed(f"PESQ cannot process the output ({str(err)[:80]})") from None


def stoi_score(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    pystoi = require("pystoi")
    return float(pystoi.stoi(_at(reference, sr, 16000), _at(estimate, sr, 16000), 16000, extended=False))


@lru_cache(maxsize=1)
def _voice_encoder():
    return require("resemblyzer").VoiceEncoder("cpu", verbose=False)


class NotScorable(Exception):
    """The reference itself cannot be scored by a metric (the item is skipped for it, with this reason)."""


class MetricFailed(Exception):
    """The estimate cannot be scored by a metric (it gets the worst score, with this reason)."""


MIN_SPEECH_SECONDS = 0.2  # of voice-active audio the speaker embedding needs


def _speech_part(x: np.ndarray, sr: int) -> np.ndarray | None:
    """resemblyzer's voice-activity trimmed audio at 16 kHz, or None when under MIN_SPEECH_SECONDS remain."""
    resemblyzer = require("resemblyzer")
    try:
        speech = resemblyzer.preprocess_wav(_at(x, sr, 16000), 16000)
    except Exception:  # noqa: BLE001 (its VAD fails on empty or all-silent input)
        return None
    return speech if len(speech) >= MIN_SPEECH_SECONDS * 16000 else None


def speaker_similarity(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    """Cosine of resemblyzer embeddings of the voice-active parts. A reference without speech is not
    scorable (NotScorable); an estimate without speech fails (MetricFailed), never a default 1.0."""
    encoder = _voice_encoder()
    ref, est = _speech_part(reference, sr), _speech_part(estimate, sr)
    if ref is None:
        raise NotScorable("no speech found in the reference")
    if est is None:
        raise MetricFailed("no speech found in the output")
    a, b = encoder.embed_utterance(ref), encoder.embed_utterance(est)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


DNSMOS_KEYS = {
    "dnsmos": "ovrl_mos",
    "dnsmos_sig": "sig_mos",
    "dnsmos_bak": "bak_mos",
    "dnsmos_p808": "p808_mos",
}


def dnsmos(x: np.ndarray, sr: int) -> dict[str, float]:
    """DNSMOS of x alone: {"dnsmos": P.835 OVRL, "dnsmos_sig": SIG, "dnsmos_bak": BAK, "dnsmos_p808": P.808}."""
    require("onnxruntime")
    speechmos = require("speechmos")
    from speechmos import dnsmos as dns

    del speechmos
    audio = _at(x, sr, 16000)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0:
        audio = audio / peak
    if audio.size < 16000 // 2:
        raise MetricFailed("under 0.5 s of audio for DNSMOS")
    scores = dns.run(audio, 16000)
    return {name: float(scores[key]) for name, key in DNSMOS_KEYS.items()}


def _weighted_argmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torchcrepe's weighted-argmax decoding without its random dither (torchcrepe adds noise to trade
    quantisation error, which makes two calls on one input disagree): logits [B, 360, T] -> (bins, Hz)."""
    torchcrepe = require("torchcrepe")
    bins = logits.argmax(dim=1)
    index = torch.arange(logits.shape[1], device=logits.device)[None, :, None]
    window = (index >= (bins - 4)[:, None]) & (index < (bins + 5)[:, None])
    probs = torch.sigmoid(logits) * window
    cents = torchcrepe.CENTS_PER_BIN * index + 1997.3794084376191
    cents = (cents * probs).sum(dim=1) / probs.sum(dim=1)
    return bins, torchcrepe.convert.cents_to_frequency(cents)


def _f0(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    torchcrepe = require("torchcrepe")
    audio = torch.from_numpy(_at(x, sr, 16000))[None]
    f0, periodicity = torchcrepe.predict(
        audio,
        16000,
        160,
        50.0,
        1100.0,
        "tiny",
        decoder=_weighted_argmax,
        return_periodicity=True,
        batch_size=1024,
        device="cpu",
    )
    return f0[0].numpy(), periodicity[0].numpy()


MIN_VOICED_FRAMES = 10  # 100 ms of voiced frames (10 ms hop)
GROSS_PITCH_ERROR = 0.2  # relative deviation that makes a pitch error gross (the usual 20 %)


def f0_metrics(reference: np.ndarray, estimate: np.ndarray, sr: int) -> dict[str, float]:
    """Pitch metrics from torchcrepe (10 ms frames, voiced where periodicity > 0.5), over the reference's
    frames (the estimate is already at its length):
    f0_vde (voicing decision error: frames whose voicing differs), f0_gpe (gross pitch error: frames
    voiced in both whose F0 is off by over 20 %), f0_ffe (F0 frame error: frames with either error),
    and over frames voiced in both: f0_rmse_cents and f0_corr (Pearson of log F0).
    A reference with under MIN_VOICED_FRAMES voiced frames is not scorable; fewer frames voiced in both
    fail the RMSE and correlation (as noise does) while VDE and FFE still count the voicing errors."""
    f_ref, p_ref = _f0(reference, sr)
    f_est, p_est = _f0(estimate, sr)
    n = min(len(f_ref), len(f_est))
    v_ref, v_est = p_ref[:n] > 0.5, p_est[:n] > 0.5
    if int(v_ref.sum()) < MIN_VOICED_FRAMES:
        raise NotScorable(f"{int(v_ref.sum())} voiced frames in the reference (F0 needs {MIN_VOICED_FRAMES})")
    both = v_ref & v_est
    ratio = f_est[:n][both] / np.maximum(f_ref[:n][both], 1e-6)
    gross = np.abs(ratio - 1) > GROSS_PITCH_ERROR
    out = {
        "f0_vde": float((v_ref != v_est).mean()),
        "f0_gpe": float(gross.mean()) if both.any() else 1.0,
        "f0_ffe": float(((v_ref != v_est).sum() + gross.sum()) / n),
    }
    if int(both.sum()) < MIN_VOICED_FRAMES:
        out["failed"] = (
            f"{int(both.sum())} frames voiced in both (RMSE and correlation need {MIN_VOICED_FRAMES})"
        )
        return out
    a, b = np.log2(f_ref[:n][both]), np.log2(f_est[:n][both])
    out["f0_rmse_cents"] = float(np.sqrt(np.mean((1200 * (a - b)) ** 2)))
    out["f0_corr"] = 1.0 if np.allclose(a, b) else float(np.corrcoef(a, b)[0, 1])
    return out


def normalise_text(text: str) -> str:
    """English text as WER compares it: Whisper's English normaliser (whisper-normalizer), the convention
    of ASR evaluation: lower case, no punctuation, numbers as digits ("twenty-one" -> "21"),
    contractions expanded, British spellings made American."""
    from whisper_normalizer.english import EnglishTextNormalizer

    return _english_normaliser(EnglishTextNormalizer)(text)


@functools.cache
def _english_normaliser(cls):
    return cls()


def word_error_rate(truth: str, hypothesis: str) -> float:
    """Word error rate (jiwer) of `hypothesis` against `truth`, both normalised (`normalise_text`);
    NaN when the truth has no words."""
    jiwer = require("jiwer")
    require("whisper_normalizer")
    ref, hyp = normalise_text(truth), normalise_text(hypothesis)
    if not re.search(r"\w", ref):  # no words to recognise (the normaliser can leave a lone ".")
        return math.nan
    return float(jiwer.wer(ref, hyp)) if re.search(r"\w", hyp) else 1.0


def transcribe(x: np.ndarray, sr: int) -> str:
    pocketsphinx = require("pocketsphinx")
    audio = _at(x, sr, 16000)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder = pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


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
