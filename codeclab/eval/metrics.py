"""Reconstruction metrics: reference and estimate are mono numpy arrays at the same sample rate.

Each metric resamples as it requires and says so (`MetricSpec.rate`): PESQ-WB at 16 kHz, PESQ-NB at 8 kHz,
STOI at 16 kHz (pystoi works at 10 kHz internally), speaker similarity and DNSMOS at 16 kHz, F0 at 16 kHz
(torchcrepe), WER at 16 kHz (pocketsphinx); SI-SDR, mel and STFT distances at the evaluation rate.

A metric whose optional package is missing is skipped with its reason (`metric_status`). Values are floats;
NaN where a metric cannot score an item (e.g. PESQ finds no speech, F0 finds no voiced frames).
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


def _at(x: np.ndarray, sr: int, rate: int | None) -> np.ndarray:
    if rate is None or rate == sr:
        return x.astype(np.float32)
    return resample(x[None].astype(np.float32), sr, rate)[0]


def si_sdr(reference: np.ndarray, estimate: np.ndarray, sr: int = 0) -> float:
    """Scale-invariant SDR in dB (capped at 100 dB for identical signals)."""
    ref = reference.astype(np.float64) - reference.mean()
    est = estimate.astype(np.float64) - estimate.mean()
    energy = np.dot(ref, ref)
    if energy <= 0:
        return math.nan
    target = np.dot(est, ref) / energy * ref
    noise = est - target
    noise_energy = np.dot(noise, noise)
    if noise_energy <= 1e-20 * np.dot(target, target):
        return 100.0
    return float(min(100.0, 10 * np.log10(np.dot(target, target) / noise_energy)))


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
    pesq = require("pesq")
    rate = 16000 if mode == "wb" else 8000
    try:
        return float(pesq.pesq(rate, _at(reference, sr, rate), _at(estimate, sr, rate), mode))
    except Exception:  # e.g. "No utterances detected"
        return math.nan


def stoi_score(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    pystoi = require("pystoi")
    return float(pystoi.stoi(_at(reference, sr, 16000), _at(estimate, sr, 16000), 16000, extended=False))


@lru_cache(maxsize=1)
def _voice_encoder():
    return require("resemblyzer").VoiceEncoder("cpu", verbose=False)


def speaker_similarity(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    resemblyzer = require("resemblyzer")
    encoder = _voice_encoder()
    try:
        a = encoder.embed_utterance(resemblyzer.preprocess_wav(_at(reference, sr, 16000), 16000))
        b = encoder.embed_utterance(resemblyzer.preprocess_wav(_at(estimate, sr, 16000), 16000))
    except Exception:  # too short after voice-activity trimming
        return math.nan
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def dnsmos(x: np.ndarray, sr: int) -> float:
    require("onnxruntime")
    speechmos = require("speechmos")
    from speechmos import dnsmos as dns

    del speechmos
    audio = _at(x, sr, 16000)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0:
        audio = audio / peak
    return float(dns.run(audio, 16000)["ovrl_mos"])


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


def f0_metrics(reference: np.ndarray, estimate: np.ndarray, sr: int) -> tuple[float, float]:
    """(RMS F0 error in cents, Pearson correlation of log F0) over frames voiced in the reference
    (periodicity > 0.5) and in the estimate."""
    f_ref, p_ref = _f0(reference, sr)
    f_est, p_est = _f0(estimate, sr)
    n = min(len(f_ref), len(f_est))
    voiced = (p_ref[:n] > 0.5) & (p_est[:n] > 0.5)
    if voiced.sum() < 3:
        return math.nan, math.nan
    a, b = np.log2(f_ref[:n][voiced]), np.log2(f_est[:n][voiced])
    cents = float(np.sqrt(np.mean((1200 * (a - b)) ** 2)))
    corr = 1.0 if np.allclose(a, b) else float(np.corrcoef(a, b)[0, 1])
    return cents, corr


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
        "pesq_wb", True, 16000, ("pesq",), "PESQ wide-band (ITU-T P.862.2), MOS-LQO 1-4.64"
    ),
    "pesq_nb": MetricSpec("pesq_nb", True, 8000, ("pesq",), "PESQ narrow-band (P.862), MOS-LQO 1-4.55"),
    "stoi": MetricSpec("stoi", True, 16000, ("pystoi",), "short-time objective intelligibility, 0-1"),
    "si_sdr": MetricSpec("si_sdr", True, None, (), "scale-invariant SDR, dB (100 = identical)"),
    "mel_distance": MetricSpec(
        "mel_distance", False, None, (), "mean |log mel| difference (1024-point FFT, 80 bands)"
    ),
    "stft_distance": MetricSpec(
        "stft_distance", False, None, ("auraloss",), "multi-resolution STFT loss (auraloss)"
    ),
    "speaker_sim": MetricSpec(
        "speaker_sim", True, 16000, ("resemblyzer",), "cosine of resemblyzer speaker embeddings"
    ),
    "dnsmos": MetricSpec(
        "dnsmos", True, 16000, ("speechmos", "onnxruntime"), "DNSMOS P.835 overall (estimate alone)"
    ),
    "f0_rmse_cents": MetricSpec(
        "f0_rmse_cents", False, 16000, ("torchcrepe",), "RMS F0 error over voiced frames, cents"
    ),
    "f0_corr": MetricSpec(
        "f0_corr", True, 16000, ("torchcrepe",), "correlation of log F0 over voiced frames"
    ),
    "wer": MetricSpec(
        "wer",
        False,
        16000,
        ("pocketsphinx", "jiwer", "whisper_normalizer"),
        "word error rate of pocketsphinx (English items with text; jiwer, Whisper's normaliser)",
    ),
}
DEFAULT_METRICS = list(SPECS)


def metric_status(names: list[str]) -> dict[str, str]:
    """name -> "" when usable, else the reason it is skipped."""
    status = {}
    for name in names:
        if name not in SPECS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(SPECS)}")
        reasons = [available(m)[1] for m in SPECS[name].requires]
        status[name] = "; ".join(r for r in reasons if r)
    return status


def compute(
    reference: np.ndarray,
    estimate: np.ndarray,
    sr: int,
    names: list[str],
    text: str | None = None,
    language: str | None = None,
    reference_cache: dict | None = None,
) -> dict[str, float]:
    """The usable metrics among `names` for one item (skipped ones are absent). `reference_cache` keeps
    reference-only results (DNSMOS and WER of the original) across codecs."""
    n = min(len(reference), len(estimate))
    reference, estimate = reference[:n].astype(np.float32), estimate[:n].astype(np.float32)
    cache = reference_cache if reference_cache is not None else {}
    out: dict[str, float] = {}
    runners: dict[str, Callable[[], None]] = {
        "pesq_wb": lambda: out.__setitem__("pesq_wb", pesq_score(reference, estimate, sr, "wb")),
        "pesq_nb": lambda: out.__setitem__("pesq_nb", pesq_score(reference, estimate, sr, "nb")),
        "stoi": lambda: out.__setitem__("stoi", stoi_score(reference, estimate, sr)),
        "si_sdr": lambda: out.__setitem__("si_sdr", si_sdr(reference, estimate)),
        "mel_distance": lambda: out.__setitem__("mel_distance", mel_distance(reference, estimate, sr)),
        "stft_distance": lambda: out.__setitem__("stft_distance", stft_distance(reference, estimate, sr)),
        "speaker_sim": lambda: out.__setitem__("speaker_sim", speaker_similarity(reference, estimate, sr)),
    }
    for name, run in runners.items():
        if name in names:
            run()
    if "dnsmos" in names:
        out["dnsmos"] = dnsmos(estimate, sr)
        if "dnsmos_reference" not in cache:
            cache["dnsmos_reference"] = dnsmos(reference, sr)
        out["dnsmos_reference"] = cache["dnsmos_reference"]
    if "f0_rmse_cents" in names or "f0_corr" in names:
        cents, corr = f0_metrics(reference, estimate, sr)
        out["f0_rmse_cents"], out["f0_corr"] = cents, corr
    if "wer" in names and text and (language or "en").startswith("en"):
        out["wer"] = word_error_rate(text, transcribe(estimate, sr))
        if "wer_reference" not in cache:
            cache["wer_reference"] = word_error_rate(text, transcribe(reference, sr))
        out["wer_reference"] = cache["wer_reference"]
    return out


def codebook_statistics(codes: list[np.ndarray], codebook_size: int, frame_rate: float) -> dict:
    """Over all items' codes ([n_q, F] each): per codebook usage (fraction of codes seen), entropy (bits),
    dead codes (never seen); and the entropy-estimated bitrate frame_rate x sum of entropies."""
    n_q = codes[0].shape[0]
    per = []
    for q in range(n_q):
        counts = np.bincount(np.concatenate([c[q] for c in codes]).astype(np.int64), minlength=codebook_size)
        probs = counts[counts > 0] / counts.sum()
        entropy = float(-(probs * np.log2(probs)).sum())
        per.append(
            {
                "usage": float((counts > 0).mean()),
                "entropy_bits": entropy,
                "dead_codes": int((counts == 0).sum()),
            }
        )
    return {"per_codebook": per, "entropy_bitrate": frame_rate * sum(p["entropy_bits"] for p in per)}
