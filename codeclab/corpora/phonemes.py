"""Speech with exact phone alignments, synthesised by espeak-ng's library (libespeak-ng, via ctypes).

espeak-ng reports a phoneme event, with its sample position, for every phoneme it speaks when initialised
with espeakINITIALIZE_PHONEME_EVENTS. Synthesising through the library therefore gives audio and its
phone segmentation at once; no forced aligner is needed, and mbrola voices (for `--pho`) are not either.
Phones are espeak's own mnemonics (e.g. `t`, `eI`, `@`); pauses (`_`, `_:`, ...) and audio before the
first phone are labelled "sil".

The engine is a process-wide singleton of the C library: calls are serialised by a lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SILENCE = "sil"
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_POS_CHARACTER, _CHARS_UTF8 = 1, 1
_RATE, _PITCH = 1, 3


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT from speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class EspeakUnavailable(RuntimeError):
    """libespeak-ng is not installed (apt-get install espeak-ng)."""


@dataclass
class Alignment:
    """audio [T] float32 at sample_rate; phones: (start seconds, end seconds, phone), contiguous from 0."""

    audio: np.ndarray
    sample_rate: int
    phones: list[tuple[float, float, str]]

    def to_json(self) -> dict:
        return {
            "sample_rate": self.sample_rate,
            "phones": [[round(a, 6), round(b, 6), p] for a, b, p in self.phones],
        }


def normalise_phone(name: str) -> str:
    return SILENCE if not name or name.startswith("_") else name


class _Engine:
    _lock = threading.Lock()
    _instance: _Engine | None = None

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as err:
            raise EspeakUnavailable(
                f"libespeak-ng is not installed ({err}); apt-get install espeak-ng"
            ) from err
        self.sample_rate = int(
            self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
        )
        if self.sample_rate <= 0:
            raise EspeakUnavailable("espeak_Initialize failed (espeak-ng-data missing?)")
        self._audio: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _Callback(self._collect)  # kept referenced: the library calls it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, count, events) -> int:
        if count > 0 and wav:
            self._audio.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                self._events.append((int(events[i].sample), events[i].id.string.decode("utf-8", "replace")))
            i += 1
        return 0

    @classmethod
    def get(cls) -> _Engine:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def synthesise(self, text: str, voice: str, rate: int, pitch: int) -> Alignment:
        self._audio, self._events = [], []
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        data = text.encode("utf-8")
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        audio = (np.concatenate(self._audio) if self._audio else np.zeros(0, np.int16)).astype(
            np.float32
        ) / 32768.0
        sr, total = self.sample_rate, len(audio)
        phones: list[tuple[float, float, str]] = []
        cursor = 0
        for i, (sample, name) in enumerate(self._events):
            start = min(max(sample, cursor), total)
            end = min(self._events[i + 1][0], total) if i + 1 < len(self._events) else total
            if start > cursor:
                phones.append((cursor / sr, start / sr, SILENCE))
            if end > start:
                phones.append((start / sr, end / sr, normalise_phone(name)))
                cursor = end
        if cursor < total:
            phones.append((cursor / sr, total / sr, SILENCE))
        return Alignment(audio, sr, _merge(phones))


def _merge(phones: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    merged: list[tuple[float, float, str]] = []
    for start, end, name in phones:
        if merged and merged[-1][2] == name:
            merged[-1] = (merged[-1][0], end, name)
        else:
            merged.append((start, end, name))
    return merged


def synthesise(text: str, voice: str = "en", rate: int = 175, pitch: int = 50) -> Alignment:
    """Speak `text` with espeak-ng voice `voice` (e.g. "en+m3"); return audio and its phone segments."""
    with _Engine._lock:
        return _Engine.get().synthesise(text, voice, rate, pitch)


def available() -> tuple[bool, str]:
    try:
        with _Engine._lock:
            _Engine.get()
    except EspeakUnavailable as err:
        return False, str(err)
    return True, ""


def frame_labels(phones: list[tuple[float, float, str]], frame_rate: float, frames: int) -> list[str]:
    """The phone at the centre of each frame (frame f spans [f, f + 1) / frame_rate); "sil" outside."""
    starts = np.array([p[0] for p in phones])
    out = []
    for f in range(frames):
        t = (f + 0.5) / frame_rate
        i = int(np.searchsorted(starts, t, side="right")) - 1
        out.append(phones[i][2] if 0 <= i < len(phones) and t < phones[i][1] else SILENCE)
    return out


def read_sidecar(path: str | Path) -> list[tuple[float, float, str]]:
    data = json.loads(Path(path).read_text())
    return [(float(a), float(b), str(p)) for a, b, p in data["phones"]]
