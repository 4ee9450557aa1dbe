"""An offline demo corpus from Debian packages and music21, with a manifest and a licence per file.

Sources (each skipped, with the reason logged, when its tool or package is missing):

    espeak        speech synthesised by espeak-ng: sentences written for codeclab in 12 languages, many voice
                  variants, speaking rates and pitches; with exact phone alignments (<file>.phones.json,
                  from libespeak-ng's phoneme events) for the phone probe and the phonetic teacher
    flite         English speech from flite's voices (kal, awb, rms, slt, kal16)
    festival      English speech from festival (text2wave, kal diphone voice)
    klettres      real voices: letters and syllables spoken in ~20 languages (klettres-data)
    asterisk      real voice, 8 kHz telephone prompts (asterisk-core-sounds-en-wav)
    music         Bach chorales and other works from music21's corpus, rendered by fluidsynth with the
                  fluid-soundfont-gm General MIDI soundfont
    samples       sonic-pi-samples: drums, ambient, bass, loops...

`build_demo_corpus(out)` writes out/audio/<source>/*.{wav,ogg,flac} and out/manifest.jsonl, one row per
file: id, path, duration, source, language, text (for synthesised speech), voice settings, licence (with
the Debian package, version and copyright file it comes from) and split (about 10 % "validation", fixed by
a hash of the id). `make corpus` installs the Debian packages and music21.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import random
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeclab._files import atomic_write_json, atomic_write_text
from codeclab._optional import install_hint
from codeclab._progress import progress_task

log = logging.getLogger("codeclab.data")

DEBIAN_PACKAGES = [
    "espeak-ng",
    "flite",
    "festival",
    "festvox-kallpc16k",
    "fluidsynth",
    "fluid-soundfont-gm",
    "sonic-pi-samples",
    "klettres-data",
    "asterisk-core-sounds-en-wav",
]

SENTENCES_FILE = Path(__file__).resolve().parent.parent / "assets" / "demo_sentences.json"


@functools.cache
def sentences() -> dict[str, list[str]]:
    """Short sentences written for codeclab (CC0), by language, spoken by the synthesisers
    (codeclab/assets/demo_sentences.json)."""
    return json.loads(SENTENCES_FILE.read_text(encoding="utf-8"))["sentences"]


ESPEAK_VARIANTS = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "croak",
    "whisper",
]
FLITE_VOICES = ["kal", "awb", "rms", "slt", "kal16"]
TTS_LICENCE = "synthesised from text written for codeclab (CC0)"


@dataclass
class Entry:
    source: str
    path: Path  # the audio file written under out/audio
    licence: str
    package: str | None = None
    language: str | None = None
    text: str | None = None
    extra: dict = field(default_factory=dict)


def _package_version(package: str) -> str | None:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def dep5_licences(copyright_file: Path) -> list[tuple[list[str], str]]:
    """(Files patterns, licence short name) per stanza of a machine-readable Debian copyright file."""
    stanzas: list[tuple[list[str], str]] = []
    if not copyright_file.is_file():
        return stanzas
    files: list[str] = []
    licence = ""
    field_name = ""
    for line in copyright_file.read_text(errors="replace").splitlines() + [""]:
        if not line.strip():
            if files and licence:
                stanzas.append((files, licence))
            files, licence, field_name = [], "", ""
            continue
        if line[0].isspace():
            if field_name == "Files":
                files += line.split()
            continue
        field_name, _, value = line.partition(":")
        if field_name == "Files":
            files = value.split()
        elif field_name == "License" and value.strip():
            licence = value.strip()
    return stanzas


def _matches(path: Path, pattern: str) -> bool:
    """Does a DEP-5 pattern (a path in the source tree) name this installed file? Either on trailing path
    parts, or, for a pattern with a literal file name, on that file name (installed paths differ from
    source-tree paths: etc/samples/x.flac is installed as /usr/share/sonic-pi/samples/x.flac)."""
    parts = path.parts
    if any(fnmatch.fnmatch("/".join(parts[-i:]), pattern) for i in range(1, min(len(parts), 4) + 1)):
        return True
    name = pattern.rsplit("/", 1)[-1]
    return "/" in pattern and not any(ch in name for ch in "*?[") and name == path.name


def licence_for(path: Path, stanzas: list[tuple[list[str], str]]) -> str | None:
    """DEP-5: the last stanza whose pattern matches the file."""
    found = None
    for patterns, licence in stanzas:
        if any(_matches(path, p) for p in patterns):
            found = licence
    return found


def package_licence(package: str) -> str:
    stanzas = dep5_licences(Path("/usr/share/doc") / package / "copyright")
    names = sorted({lic for _, lic in stanzas})
    return ", ".join(names) if names else f"see /usr/share/doc/{package}/copyright"


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


class Builder:
    def __init__(self, out: Path, seed: int = 0) -> None:
        self.out = out
        self.audio = out / "audio"
        self.rng = random.Random(seed)
        self.skipped: dict[str, str] = {}

    def _dir(self, source: str) -> Path:
        d = self.audio / source
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- synthesised speech ---------------------------------------------------------------------------
    def espeak(self, count: int) -> Iterator[Entry]:
        """Through libespeak-ng when it loads (audio plus a phone-alignment sidecar, <file>.phones.json),
        else through the espeak-ng command (audio only)."""
        from codeclab.corpora import phonemes

        library, _ = phonemes.available()
        if shutil.which("espeak-ng") is None and not library:
            self.skipped["espeak"] = "espeak-ng is not installed"
            return
        licence = f"espeak-ng ({package_licence('espeak-ng') if Path('/usr/share/doc/espeak-ng/copyright').is_file() else 'GPL-3+'}); {TTS_LICENCE}"
        languages = list(sentences())
        for i in range(count):  # round-robin over languages, so even a small corpus has all of them
            lang = languages[i % len(languages)]
            text = sentences()[lang][(i // len(languages)) % len(sentences()[lang])]
            variant = self.rng.choice(ESPEAK_VARIANTS)
            rate, pitch = self.rng.randint(120, 220), self.rng.randint(25, 75)
            path = self._dir("espeak") / f"espeak_{i:04d}_{lang}.wav"
            voice = f"{lang}+{variant}"
            extra = {"voice": voice, "rate": rate, "pitch": pitch}
            if library:
                import soundfile as sf

                try:
                    aligned = phonemes.synthesise(text, voice, rate, pitch)
                except ValueError as err:
                    log.warning("espeak-ng failed for %s: %s", voice, err)
                    continue
                sf.write(str(path), aligned.audio, aligned.sample_rate, subtype="PCM_16")
                sidecar = path.with_name(path.name + ".phones.json")
                atomic_write_json(sidecar, aligned.to_json(), indent=None)
                extra["phones"] = sidecar.relative_to(self.out).as_posix()
            else:
                cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(path), text]
                proc = _run(cmd)
                if proc.returncode != 0 or not path.is_file():
                    log.warning("espeak-ng failed for %s: %s", voice, proc.stderr.strip()[:200])
                    continue
            yield Entry("espeak", path, licence, "espeak-ng", lang, text, extra)

    def flite(self, count: int) -> Iterator[Entry]:
        if shutil.which("flite") is None:
            self.skipped["flite"] = "flite is not installed"
            return
        licence = f"flite (CMU BSD-style; see /usr/share/doc/flite/copyright); {TTS_LICENCE}"
        for i in range(count):
            voice = FLITE_VOICES[i % len(FLITE_VOICES)]
            text = sentences()["en"][(i * 5) % len(sentences()["en"])]
            path = self._dir("flite") / f"flite_{i:04d}_{voice}.wav"
            proc = _run(["flite", "-voice", voice, "-t", text, "-o", str(path)])
            if proc.returncode != 0 or not path.is_file():
                log.warning("flite failed for %s: %s", voice, proc.stderr.strip()[:200])
                continue
            yield Entry("flite", path, licence, "flite", "en", text, {"voice": voice})

    def festival(self, count: int) -> Iterator[Entry]:
        if shutil.which("text2wave") is None:
            self.skipped["festival"] = "festival (text2wave) is not installed"
            return
        licence = f"festival + festvox-kallpc16k (free licences; see /usr/share/doc/festival/copyright); {TTS_LICENCE}"
        for i in range(count):
            text = sentences()["en"][(i * 7 + 3) % len(sentences()["en"])]
            path = self._dir("festival") / f"festival_{i:04d}.wav"
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
                fh.write(text)
            proc = _run(["text2wave", fh.name, "-o", str(path)])
            Path(fh.name).unlink(missing_ok=True)
            if proc.returncode != 0 or not path.is_file():
                log.warning("festival failed: %s", proc.stderr.strip()[:200])
                continue
            yield Entry("festival", path, licence, "festival", "en", text, {"voice": "kal_diphone"})

    # -- recordings -----------------------------------------------------------------------------------
    def _copy(
        self, source: str, files: list[Path], count: int, package: str, language_of=None
    ) -> Iterator[Entry]:
        if not files:
            self.skipped[source] = f"{package} is not installed"
            return
        stanzas = dep5_licences(Path("/usr/share/doc") / package / "copyright")
        fallback = package_licence(package)
        chosen = sorted(files)
        self.rng.shuffle(chosen)
        for i, src in enumerate(sorted(chosen[:count])):
            path = self._dir(source) / f"{source}_{i:04d}_{src.stem}{src.suffix}"
            shutil.copyfile(src, path)
            licence = (
                f"{licence_for(src, stanzas) or fallback} ({package}, /usr/share/doc/{package}/copyright)"
            )
            yield Entry(
                source,
                path,
                licence,
                package,
                language_of(src) if language_of else None,
                None,
                {"original": str(src)},
            )

    def klettres(self, count: int) -> Iterator[Entry]:
        root = Path("/usr/share/klettres")
        files = [p for p in root.rglob("*.ogg")] if root.is_dir() else []
        yield from self._copy(
            "klettres", files, count, "klettres-data", lambda p: p.relative_to(root).parts[0]
        )

    def asterisk(self, count: int) -> Iterator[Entry]:
        root = Path("/usr/share/asterisk/sounds")
        files = [p for p in root.rglob("*.wav")] if root.is_dir() else []
        yield from self._copy("asterisk", files, count, "asterisk-core-sounds-en-wav", lambda p: "en")

    def samples(self, count: int) -> Iterator[Entry]:
        root = Path("/usr/share/sonic-pi/samples")
        files = [p for p in root.glob("*.flac")] if root.is_dir() else []
        yield from self._copy("samples", files, count, "sonic-pi-samples")

    # -- music ----------------------------------------------------------------------------------------
    def music(self, count: int, seconds: float = 30.0) -> Iterator[Entry]:
        soundfont = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
        if shutil.which("fluidsynth") is None or not soundfont.is_file():
            self.skipped["music"] = "fluidsynth or fluid-soundfont-gm is not installed"
            return
        try:
            from music21 import corpus as m21corpus
        except ImportError:
            self.skipped["music"] = f"music21 is not installed ({install_hint('corpus')})"
            return
        works = sorted(str(p) for p in m21corpus.getComposer("bach"))[: max(count * 3, count)]
        self.rng.shuffle(works)
        made = 0
        sf_licence = package_licence("fluid-soundfont-gm")
        for work in works:
            if made >= count:
                break
            try:
                score = m21corpus.parse(work)
                midi = Path(tempfile.mkstemp(suffix=".mid")[1])
                score.write("midi", fp=str(midi))
            except Exception as err:  # music21 raises many kinds of errors on odd scores
                log.warning("music21 could not render %s: %s", work, err)
                continue
            path = self._dir("music") / f"music_{made:04d}_{Path(work).stem}.wav"
            proc = _run(
                [
                    "fluidsynth",
                    "-ni",
                    "-q",
                    "-F",
                    str(path),
                    "-r",
                    "22050",
                    "-g",
                    "0.8",
                    str(soundfont),
                    str(midi),
                ]
            )
            midi.unlink(missing_ok=True)
            if proc.returncode != 0 or not path.is_file():
                log.warning("fluidsynth failed for %s: %s", work, proc.stderr.strip()[:200])
                continue
            _trim(path, seconds)
            licence = (
                f"J. S. Bach, public domain score from music21's corpus (music21: BSD-3-Clause); rendered with "
                f"fluid-soundfont-gm ({sf_licence})"
            )
            yield Entry("music", path, licence, "fluid-soundfont-gm", None, None, {"work": Path(work).name})
            made += 1


def _trim(path: Path, seconds: float) -> None:
    import soundfile as sf

    data, sr = sf.read(str(path), always_2d=True)
    sf.write(str(path), data[: int(seconds * sr)], sr)


def build_demo_corpus(
    out: str | Path,
    espeak: int = 200,
    flite: int = 40,
    festival: int = 20,
    klettres: int = 150,
    asterisk: int = 80,
    music: int = 8,
    samples: int = 60,
    val_percent: int = 10,
    seed: int = 0,
) -> dict:
    """Build the corpus; returns a summary {"items", "seconds", "by_source", "skipped"}."""
    import soundfile as sf

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    builder = Builder(out, seed)
    plan = [
        ("espeak", builder.espeak, espeak),
        ("flite", builder.flite, flite),
        ("festival", builder.festival, festival),
        ("klettres", builder.klettres, klettres),
        ("asterisk", builder.asterisk, asterisk),
        ("music", builder.music, music),
        ("samples", builder.samples, samples),
    ]
    rows: list[dict[str, Any]] = []
    by_source: dict[str, Any] = {}
    for name, make, count in plan:
        if count <= 0:
            continue
        with progress_task(f"demo corpus {name}", count, "items") as advance:
            entries = []
            for entry in make(count):
                entries.append(entry)
                advance()
        for entry in entries:
            try:
                info = sf.info(str(entry.path))
            except Exception as err:
                log.warning("dropping %s: %s", entry.path, err)
                entry.path.unlink(missing_ok=True)
                continue
            if info.frames == 0:
                entry.path.unlink(missing_ok=True)
                continue
            item_id = entry.path.relative_to(out / "audio").as_posix()
            split = "validation" if zlib.crc32(item_id.encode()) % 100 < val_percent else "train"
            version = _package_version(entry.package) if entry.package else None
            row = {
                "id": item_id,
                "path": entry.path.relative_to(out).as_posix(),
                "duration": round(info.frames / info.samplerate, 4),
                "sample_rate": info.samplerate,
                "source": entry.source,
                "language": entry.language,
                "text": entry.text,
                "licence": entry.licence,
                "package": entry.package,
                "package_version": version,
                "split": split,
                **entry.extra,
            }
            rows.append(row)
            by_source[name] = by_source.get(name, 0) + 1
    rows.sort(key=lambda r: r["id"])
    atomic_write_text(out / "manifest.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    summary = {
        "items": len(rows),
        "seconds": round(sum(r["duration"] for r in rows), 1),
        "by_source": by_source,
        "skipped": builder.skipped,
        "validation": sum(r["split"] == "validation" for r in rows),
    }
    atomic_write_json(out / "corpus.json", summary)
    return summary
