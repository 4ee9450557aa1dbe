"""Teacher features cached on disk, so codec training runs each teacher once per file, ever.

Layout: `ROOT/<key>/<sha[:2]>/<sha>.safetensors` (key: sha256 of the teacher fingerprint and the
loudness target, 16 hex digits), one shard per audio file keyed by
the sha256 of the file's bytes (renamed or copied files hit the cache; an edited file misses it), holding
`features` [T_t, D] at the teacher's frame rate for the whole file. `teacher.json` beside the shards
describes the teacher. Shards are written through a temporary file and a rename: an interrupted run never
leaves a half-written shard.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor

from codeclab._files import atomic_write_bytes, sha256_file
from codeclab.audio.io import AudioError, load_audio
from codeclab.audio.loudness import normalise_loudness
from codeclab.teachers.base import Teacher

log = logging.getLogger("codeclab.teachers")


class TeacherCache:
    """Whole-file teacher features [T_t, D], computed on first request and then read from disk.

    Audio is decoded, mixed to mono, resampled to the teacher's rate and loudness-normalised to
    `target_db` (as training crops are) before the teacher sees it. `memory_items` shards stay in an LRU."""

    def __init__(
        self, root: str | Path, teacher: Teacher, target_db: float = -20.0, memory_items: int = 4096
    ) -> None:
        self.teacher, self.target_db = teacher, target_db
        # the features depend on the teacher and on the loudness its input is normalised to
        key = hashlib.sha256(f"{teacher.fingerprint()}|{float(target_db)}".encode()).hexdigest()
        self.dir = Path(root) / key[:16]
        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "teacher.json"
        if not info.exists():
            info.write_text(
                json.dumps(
                    {**teacher.describe(), "fingerprint": teacher.fingerprint(), "target_db": target_db},
                    indent=2,
                )
                + "\n"
            )
        self._sha: dict[tuple[str, int, int], str] = {}
        self._memory: OrderedDict[str, Tensor] = OrderedDict()
        self.memory_items = memory_items
        self.computed = 0  # teacher runs by this object (the rest came from disk or memory)

    def sha256(self, path: str | Path) -> str:
        stat = Path(path).stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._sha:
            self._sha[key] = sha256_file(path)
        return self._sha[key]

    def shard(self, sha: str) -> Path:
        return self.dir / sha[:2] / f"{sha}.safetensors"

    def compute(self, path: str | Path) -> Tensor:
        """Run the teacher on the whole file (no cache) -> [T_t, D]."""
        audio = load_audio(path, self.teacher.sample_rate, 1)
        wav = torch.from_numpy(normalise_loudness(audio, self.target_db))[0]
        return self.teacher.item_features(wav).float().contiguous()

    def get(self, path: str | Path) -> Tensor:
        """Features of the whole file `path` [T_t, D] (computed and stored if missing)."""
        from safetensors.torch import load_file, save

        sha = self.sha256(path)
        if sha in self._memory:
            self._memory.move_to_end(sha)
            return self._memory[sha]
        shard = self.shard(sha)
        if shard.exists():
            features = load_file(str(shard))["features"]
        else:
            features = self.compute(path)
            shard.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(
                shard, save({"features": features}, metadata={"source": str(path), "sha256": sha})
            )
            self.computed += 1
        self._memory[sha] = features
        if len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)
        return features

    def fill(self, paths: list[str], log_every: int = 100) -> tuple[int, list[tuple[str, str]]]:
        """Make sure every file in `paths` has a shard. Returns (how many were computed now, [(path,
        reason)] for files that could not be read: logged and left out, the rest go on)."""
        before, failed = self.computed, []
        for i, path in enumerate(paths):
            try:
                self.get(path)
            except AudioError as err:
                log.warning("no teacher features for %s: %s", path, err.reason)
                failed.append((str(path), err.reason))
            if (i + 1) % log_every == 0:
                log.info("teacher features: %d / %d files", i + 1, len(paths))
        return self.computed - before, failed
