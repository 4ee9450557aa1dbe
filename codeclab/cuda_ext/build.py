"""Build the C++/CUDA kernels on first use, cache the shared libraries, load them with ctypes.

The kernels have a plain C ABI (pointers and sizes), so they compile in seconds without PyTorch's headers
and do not depend on PyTorch's C++ ABI. A build is keyed by the source, the compiler, the flags and the
CPU's features (the CPU kernel uses -march=native), cached under `CODECLAB_EXT_DIR` (default
~/.cache/codeclab/ext), guarded by a file lock, and written atomically. Nothing here runs at
`import codeclab`.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

CSRC = Path(__file__).parent / "csrc"


class BuildError(RuntimeError):
    """A kernel could not be compiled or loaded; the message holds the compiler's output."""


def cache_dir() -> Path:
    root = os.environ.get("CODECLAB_EXT_DIR")
    return Path(root) if root else Path.home() / ".cache" / "codeclab" / "ext"


def _cpu_features() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _tool_version(tool: str) -> str:
    try:
        return subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _build(name: str, sources: list[Path], command: list[str], extra_key: str = "") -> Path:
    """Compile `sources` with `command` + ["-o", OUT, *sources] unless a cached build exists."""
    digest = hashlib.sha256()
    for src in sources:
        digest.update(src.read_bytes())
    digest.update(" ".join(command).encode())
    digest.update(_tool_version(command[0]).encode())
    digest.update(extra_key.encode())
    key = digest.hexdigest()[:16]
    out_dir = cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{key}.so"
    if target.is_file():
        return target
    with open(out_dir / f".{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():  # built by another process while we waited
            return target
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}-", suffix=".so")
        os.close(fd)
        try:
            try:
                proc = subprocess.run(
                    command + ["-o", tmp, *map(str, sources)], capture_output=True, text=True, timeout=900
                )
            except (OSError, subprocess.SubprocessError) as err:
                raise BuildError(f"building {name} failed: cannot run {command[0]} ({err})") from err
            if proc.returncode != 0:
                raise BuildError(f"building {name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return target


def build_cpu() -> ctypes.CDLL:
    """The C++ CPU kernel (OpenMP; vectorised for this machine's CPU)."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        raise BuildError("no C++ compiler found (install g++ to build the CPU kernel)")
    flags = [
        compiler,
        "-O3",
        "-std=gnu++17",
        "-march=native",
        "-ffp-contract=fast",
        "-fopenmp",
        "-fPIC",
        "-shared",
    ]
    path = _build("rvq_cpu", [CSRC / "rvq_cpu.cpp"], flags, _cpu_features())
    return _load(path)


def build_cuda() -> ctypes.CDLL:
    """The CUDA kernel (sm_80 and newer)."""
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc")
    if nvcc is None:
        cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
        candidate = Path(cuda_home) / "bin" / "nvcc"
        nvcc = str(candidate) if candidate.is_file() else None
    if nvcc is None:
        raise BuildError("nvcc not found (install the CUDA toolkit or set NVCC) to build the CUDA kernel")
    arch = os.environ.get(
        "CODECLAB_CUDA_ARCH", "-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90"
    )
    # no --use_fast_math: the screen's error bound assumes IEEE fp32 arithmetic (FMA contraction is fine)
    flags = [nvcc, "-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-shared", *arch.split()]
    path = _build("rvq_cuda", [CSRC / "rvq_cuda.cu"], flags)
    return _load(path)


def _load(path: Path) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        raise BuildError(f"loading {path} failed: {err}") from err
    return lib
