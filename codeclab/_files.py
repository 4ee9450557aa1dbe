"""File helpers every layer may use: one sha256 of a file, one atomic write.

Atomic writes go through a temporary file in the target's directory, an fsync and a rename, so a reader
sees the old file or the new one, never half of one. The written file's mode follows the process umask
(0666 & ~umask, as `open()` would give), not mkstemp's private 0600: stores written on a shared
filesystem must be readable by the other ranks' users.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in `chunk`-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    """The process umask (read from /proc where possible: os.umask can only be read by setting it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode `open(path, "w")` would give a new file: 0o666 without the umask's bits."""
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    """The mode `mkdir` would give a new directory: 0o777 without the umask's bits."""
    return 0o777 & ~current_umask()


def temp_path_for(path: Path) -> Path:
    """A fresh, empty temporary file beside `path` (`.NAME.XXXX.tmp`), for writers that need a path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    return Path(tmp)


def is_temp_file(name: str) -> bool:
    """True for the names `atomic_write` leaves behind when its process is killed mid-write."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call writer(tmp) to fill a temporary file, then fsync it and rename it onto `path`."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        writer(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _discard(_: object) -> None:
    """A writer's return value (bytes written) is not needed."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    atomic_write(path, lambda tmp: _discard(tmp.write_bytes(data)))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write(path, lambda tmp: _discard(tmp.write_text(text, encoding="utf-8")))


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2, sort_keys: bool = False) -> None:
    """Write `data` as JSON (UTF-8, a final newline) to `path` atomically: a reader sees the old file or
    the whole new one, never a torn one. The one way codeclab writes a JSON file."""
    text = json.dumps(data, indent=indent, sort_keys=sort_keys)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def read_up_to(stream, size: int) -> bytes:
    """Up to `size` bytes from a binary stream, fewer only at its end: pipes return what has arrived, so
    a single `read` may be short."""
    data = b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def read_json_file(path: str | Path) -> object:
    """The JSON value in `path`; ValueError naming the file for bytes that are not UTF-8, invalid JSON, or
    nesting too deep to parse (a file of 100,000 '[' would otherwise raise RecursionError)."""
    import json

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise ValueError(f"{path}: invalid JSON (nested too deeply)") from None
