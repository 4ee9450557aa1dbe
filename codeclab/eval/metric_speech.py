"""Speech metrics, each on an optional package (`eval.optional`): PESQ, STOI, speaker similarity, DNSMOS,
F0 (torchcrepe) and WER (pocketsphinx). Inputs: mono numpy arrays at one rate, resampled to the rate
each metric runs at. `NotScorable`: the reference cannot be scored (not the codec's fault);
`MetricFailed`: the output cannot be scored (the codec's fault, scored at the worst value)."""

from __future__ import annotations

import functools
import math
import re
from functools import lru_cache

import numpy as np
import torch

from codeclab.eval.metric_signal import at_rate
from codeclab.eval.optional import require


def pesq_score(reference: np.ndarray, estimate: np.ndarray, sr: int, mode: str) -> float:
    """PESQ (P.862.2 wide-band or P.862 narrow-band). Fails (MetricFailed) when PESQ cannot process the
    output (e.g. "No utterances detected"); NotScorable when it cannot process the reference either."""
    pesq = require("pesq")
    rate = 16000 if mode == "wb" else 8000
    ref = at_rate(reference, sr, rate)
    try:
        return float(pesq.pesq(rate, ref, at_rate(estimate, sr, rate), mode))
    except Exception as err:  # noqa: BLE001 (pesq raises its own error types and plain ones)
        try:
            pesq.pesq(rate, ref, ref, mode)
        except Exception:  # noqa: BLE001
            raise NotScorable(f"PESQ cannot process the reference ({str(err)[:80]})") from None
        raise MetricFailed(f"PESQ cannot process the output ({str(err)[:80]})") from None


def stoi_score(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    pystoi = require("pystoi")
    return float(
        pystoi.stoi(at_rate(reference, sr, 16000), at_rate(estimate, sr, 16000), 16000, extended=False)
    )


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
        speech = resemblyzer.preprocess_wav(at_rate(x, sr, 16000), 16000)
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
    audio = at_rate(x, sr, 16000)
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
    audio = torch.from_numpy(at_rate(x, sr, 16000))[None]
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
    audio = at_rate(x, sr, 16000)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder = pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""
