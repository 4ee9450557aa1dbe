"""An offline corpus of real human speech from Debian packages, with a held-out set of unseen speakers.

Sources (each skipped, with the reason recorded, when its package is missing):

    asterisk-g722   16 kHz wideband G.722 telephony prompts, one professional speaker per language:
                    en_US_f_Allison, es_MX_f_Allison, fr_CA_f_June, it_IT_m_Carlo, ru_RU_f_IvrvoiceRU
                    (asterisk-core-sounds-{en,es,fr,it,ru}-g722, CC-BY-SA-3.0)
    ktuberling      words spoken by volunteers of KDE's ktuberling, one set of speakers per language
                    (ktuberling-data, GPL-2+)
    klettres        letters and syllables spoken in ~20 languages (klettres-data, GPL-2+)

`build_speech_corpus(out)` decodes every file with ffmpeg to 16 kHz mono PCM WAV under out/audio/ and
writes two manifests:

    out/train.jsonl    rows with split "train" or "validation" (a hash of the id picks ~3 % for validation:
                       same speakers as training, used to watch a run)
    out/heldout.jsonl  every file of the held-out speakers (HELDOUT): speakers no training row has. Pass
                       only train.jsonl to `codeclab train`; evaluate on heldout.jsonl.
    out/heldout-eval.jsonl  a fixed subset for quick benchmarks: per held-out speaker, the
                       `eval_per_speaker` files of at least 1.5 s that come first in crc32-of-id order,
                       or, for speakers of single words, clips of six words joined (`heldout_subset`).

Each row: id, path, duration, sample_rate, source, speaker, language, licence (package, version and
copyright file), split.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from codeclab._files import atomic_write_json, atomic_write_text
from codeclab._progress import progress_task

log = logging.getLogger("codeclab.corpora")

SAMPLE_RATE = 16000
ASTERISK_ROOT = Path("/usr/share/asterisk/sounds")
KTUBERLING_ROOT = Path("/usr/share/ktuberling/sounds")
KLETTRES_ROOT = Path("/usr/share/klettres")

# speaker directory of asterisk-core-sounds-<lang>-g722 -> (package, language)
ASTERISK_VOICES: dict[str, tuple[str, str]] = {
    "en_US_f_Allison": ("asterisk-core-sounds-en-g722", "en"),
    "es_MX_f_Allison": ("asterisk-core-sounds-es-g722", "es"),
    "fr_CA_f_June": ("asterisk-core-sounds-fr-g722", "fr"),
    "it_IT_m_Carlo": ("asterisk-core-sounds-it-g722", "it"),
    "ru_RU_f_IvrvoiceRU": ("asterisk-core-sounds-ru-g722", "ru"),
}

# Speakers no training row may have: a male professional voice (Italian prompts, continuous speech) and
# the volunteers of three ktuberling languages. Speaker ids are "<source>/<speaker>".
HELDOUT: frozenset[str] = frozenset(
    {"asterisk-g722/it_IT_m_Carlo", "ktuberling/de", "ktuberling/gl", "ktuberling/sl"}
)
# ktuberling's Serbian variants are the same recordings in other scripts: keep one.
KTUBERLING_SKIP = {"sr@ijekavian", "sr@ijekavianlatin", "sr@latin"}


@dataclass
class Source:
    """One file to decode: where it is, whose voice, which package and licence."""

    path: Path
    source: str
    speaker: str
    language: str
    package: str
    root: Path  # the speaker's directory: file names below it are unique
    ffmpeg_format: str | None = None  # e.g. "g722" for raw G.722

    @property
    def name(self) -> str:
        """A file name unique within the speaker: the path below `root`, "/" -> "__", as .wav."""
        return "__".join(self.path.relative_to(self.root).with_suffix(".wav").parts)

    @property
    def speaker_id(self) -> str:
        return f"{self.source}/{self.speaker}"


def _asterisk(limit: int | None) -> Iterator[Source]:
    for speaker, (package, language) in ASTERISK_VOICES.items():
        files = (
            sorted((ASTERISK_ROOT / speaker).rglob("*.g722")) if (ASTERISK_ROOT / speaker).is_dir() else []
        )
        for path in files[:limit]:
            yield Source(path, "asterisk-g722", speaker, language, package, ASTERISK_ROOT / speaker, "g722")


def _ktuberling(limit: int | None) -> Iterator[Source]:
    if not KTUBERLING_ROOT.is_dir():
        return
    for lang_dir in sorted(p for p in KTUBERLING_ROOT.iterdir() if p.is_dir()):
        if lang_dir.name in KTUBERLING_SKIP:
            continue
        for path in sorted(lang_dir.glob("*.ogg"))[:limit]:
            yield Source(path, "ktuberling", lang_dir.name, lang_dir.name, "ktuberling-data", lang_dir)


def _klettres(limit: int | None) -> Iterator[Source]:
    if not KLETTRES_ROOT.is_dir():
        return
    for lang_dir in sorted(p for p in KLETTRES_ROOT.iterdir() if p.is_dir()):
        for path in sorted(lang_dir.rglob("*.ogg"))[:limit]:
            language = lang_dir.name.split("_")[0]
            yield Source(path, "klettres", lang_dir.name, language, "klettres-data", lang_dir)


SOURCES: dict[str, Callable[[int | None], Iterator[Source]]] = {
    "asterisk-g722": _asterisk,
    "ktuberling": _ktuberling,
    "klettres": _klettres,
}
PACKAGES = sorted({p for p, _ in ASTERISK_VOICES.values()} | {"ktuberling-data", "klettres-data"})


def _licence(src: Source, cache: dict[str, tuple[list, str]]) -> str:
    from codeclab.corpora.demo import dep5_licences, licence_for, package_licence

    if src.package not in cache:
        copyright_file = Path("/usr/share/doc") / src.package / "copyright"
        cache[src.package] = (dep5_licences(copyright_file), package_licence(src.package))
    stanzas, fallback = cache[src.package]
    return f"{licence_for(src.path, stanzas) or fallback} ({src.package}, /usr/share/doc/{src.package}/copyright)"


def _decode(src: Source, dest: Path) -> str | None:
    """ffmpeg src -> dest (16 kHz mono PCM16 WAV); None on success, else the reason."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    if src.ffmpeg_format:
        cmd += ["-f", src.ffmpeg_format]
    cmd += ["-i", str(src.path), "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not dest.is_file():
        dest.unlink(missing_ok=True)
        return proc.stderr.strip()[:200] or f"ffmpeg exited with {proc.returncode}"
    return None


def _row(src: Source, dest: Path, out: Path, info, val_percent: int, licences: dict) -> dict:
    """The manifest row of a decoded file: its id, split (heldout for the held-out speakers, else
    validation for `val_percent` of ids by crc32, else train), source, speaker, language and licence."""
    item_id = dest.relative_to(out / "audio").as_posix()
    if src.speaker_id in HELDOUT:
        split = "heldout"
    else:
        split = "validation" if zlib.crc32(item_id.encode()) % 100 < val_percent else "train"
    return {
        "id": item_id,
        "path": dest.relative_to(out).as_posix(),
        "duration": round(info.frames / info.samplerate, 4),
        "sample_rate": info.samplerate,
        "source": src.source,
        "speaker": src.speaker_id,
        "language": src.language,
        "licence": _licence(src, licences),
        "package": src.package,
        "original": str(src.path),
        "split": split,
    }


def _summary(train_rows: list[dict], heldout_rows: list[dict], eval_rows: list[dict], **rest) -> dict:
    """corpus.json: items, seconds and speakers per split, and what was skipped or failed (`rest`)."""

    def seconds(rows: list[dict]) -> float:
        return round(sum(r["duration"] for r in rows), 1)

    return {
        "train_items": len(train_rows),
        "train_seconds": seconds(train_rows),
        "train_speakers": len({r["speaker"] for r in train_rows}),
        "heldout_items": len(heldout_rows),
        "heldout_seconds": seconds(heldout_rows),
        "heldout_speakers": sorted({r["speaker"] for r in heldout_rows}),
        "heldout_eval_items": len(eval_rows),
        "heldout_eval_seconds": seconds(eval_rows),
        **rest,
    }


def build_speech_corpus(
    out: str | Path,
    sources: list[str] | None = None,
    limit_per_speaker: int | None = None,
    val_percent: int = 3,
    workers: int = 2,
    eval_per_speaker: int = 12,
) -> dict:
    """Decode the sources into out/ and write train.jsonl and heldout.jsonl; returns a summary.

    Files already decoded (from an interrupted build) are kept, not decoded again. A file ffmpeg cannot
    decode is named in the log and in the summary's `failed`, one that decodes to under 100 ms in
    `too_short`, and the build goes on.
    """
    import soundfile as sf

    if shutil.which("ffmpeg") is None:
        raise RuntimeError("building the speech corpus needs ffmpeg: apt-get install ffmpeg")
    out = Path(out)
    names = sources or list(SOURCES)
    unknown = set(names) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose from {sorted(SOURCES)}")
    todo: list[tuple[Source, Path]] = []
    skipped: dict[str, str] = {}
    for name in names:
        found = list(SOURCES[name](limit_per_speaker))
        if not found:
            skipped[name] = f"no files: install {', '.join(p for p in PACKAGES if name.split('-')[0] in p)}"
        for src in found:
            rel = Path("audio") / src.source / src.speaker / src.name
            todo.append((src, out / rel))
    for _, dest in todo:
        dest.parent.mkdir(parents=True, exist_ok=True)

    def work(job: tuple[Source, Path]) -> str | None:
        src, dest = job
        return None if dest.is_file() and dest.stat().st_size > 44 else _decode(src, dest)

    reasons: list[str | None] = []
    with (
        progress_task("speech corpus", len(todo), "files") as advance,
        ThreadPoolExecutor(max(1, workers)) as pool,
    ):
        for reason in pool.map(work, todo):
            reasons.append(reason)
            advance()

    licences: dict[str, tuple[list, str]] = {}
    train_rows: list[dict] = []
    heldout_rows: list[dict] = []
    failed: dict[str, str] = {}
    too_short: list[str] = []
    for (src, dest), reason in zip(todo, reasons):
        if reason is not None:
            log.warning("%s: %s", src.path, reason)
            failed[str(src.path)] = reason
            continue
        info = sf.info(str(dest))
        if info.frames < SAMPLE_RATE // 10:  # under 100 ms: nothing to learn or score
            too_short.append(str(src.path))
            continue
        row = _row(src, dest, out, info, val_percent, licences)
        heldout = row["split"] == "heldout"
        (heldout_rows if heldout else train_rows).append(row)
    eval_rows = heldout_subset(out, heldout_rows, eval_per_speaker)
    for name, rows in (
        ("train.jsonl", train_rows),
        ("heldout.jsonl", heldout_rows),
        ("heldout-eval.jsonl", eval_rows),
    ):
        atomic_write_text(out / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))

    summary = _summary(
        train_rows, heldout_rows, eval_rows, skipped=skipped, failed=failed, too_short=too_short
    )
    atomic_write_json(out / "corpus.json", summary)
    return summary


def heldout_subset(
    out: Path, rows: list[dict], per_speaker: int = 12, min_seconds: float = 1.5, words_per_clip: int = 6
) -> list[dict]:
    """A fixed evaluation subset of held-out rows: per speaker, the first `per_speaker` files of at least
    `min_seconds` in crc32-of-id order (stable across machines and rebuilds). A speaker with fewer such
    files (ktuberling's single words) gets clips of `words_per_clip` of their files joined with 0.25 s
    of silence, written to out/audio/heldout-eval/."""
    import numpy as np
    import soundfile as sf

    chosen: list[dict] = []
    for speaker in sorted({r["speaker"] for r in rows}):
        mine = sorted(
            (r for r in rows if r["speaker"] == speaker), key=lambda r: zlib.crc32(r["id"].encode())
        )
        long_enough = [r for r in mine if r["duration"] >= min_seconds]
        if len(long_enough) >= per_speaker:
            chosen.extend(long_enough[:per_speaker])
            continue
        gap = np.zeros(SAMPLE_RATE // 4, dtype=np.float32)
        for i in range(min(per_speaker, len(mine) // words_per_clip)):
            group = mine[i * words_per_clip : (i + 1) * words_per_clip]
            parts = []
            for r in group:
                audio, _ = sf.read(str(out / r["path"]), dtype="float32")
                parts += [audio, gap]
            dest = out / "audio" / "heldout-eval" / f"{speaker.replace('/', '__')}__{i:02d}.wav"
            dest.parent.mkdir(parents=True, exist_ok=True)
            audio = np.concatenate(parts[:-1])
            sf.write(str(dest), audio, SAMPLE_RATE, subtype="PCM_16")
            chosen.append(
                {
                    **group[0],
                    "id": dest.relative_to(out / "audio").as_posix(),
                    "path": dest.relative_to(out).as_posix(),
                    "duration": round(len(audio) / SAMPLE_RATE, 4),
                    "original": [r["original"] for r in group],
                }
            )
    return sorted(chosen, key=lambda r: r["id"])
