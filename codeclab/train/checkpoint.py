"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a directory `RUN/checkpoints/step_XXXXXXXX/` with `tensors.safetensors` and `state.json`.
Nested state (model, optimiser, scheduler and RNG states) is flattened: every tensor is replaced in the
JSON by {"__tensor__": key} and stored under that key. Directories are written under a temporary name and
renamed, and `RUN/checkpoints/latest.json` is replaced atomically after that, so a crash at any moment
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from codeclab._files import atomic_write_json, default_dir_mode

TENSOR = "__tensor__"
TUPLE = "__tuple__"


def flatten(state: Any, tensors: dict[str, Tensor], prefix: str = "t") -> Any:
    """JSON-able copy of `state` with tensors moved into `tensors`."""
    if isinstance(state, Tensor):
        key = f"{prefix}{len(tensors)}"
        tensors[key] = state.detach().cpu().contiguous()
        return {TENSOR: key}
    if isinstance(state, dict):
        if not all(isinstance(k, (str, int)) for k in state):
            raise TypeError(f"state dict keys must be str or int, got {[type(k) for k in state]}")
        return {"__dict__": [[k, flatten(v, tensors, prefix)] for k, v in state.items()]}
    if isinstance(state, tuple):
        return {TUPLE: [flatten(v, tensors, prefix) for v in state]}
    if isinstance(state, list):
        return [flatten(v, tensors, prefix) for v in state]
    if isinstance(state, np.ndarray):
        array = (
            state.astype(np.int64) if state.dtype.kind == "u" else state.copy()
        )  # torch lacks most unsigned types
        return flatten(torch.from_numpy(array), tensors, prefix)
    if isinstance(state, (np.integer, np.floating)):
        return state.item()
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    raise TypeError(f"cannot store {type(state).__name__} in a checkpoint")


def unflatten(data: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(data, dict):
        if TENSOR in data:
            return tensors[data[TENSOR]]
        if TUPLE in data:
            return tuple(unflatten(v, tensors) for v in data[TUPLE])
        if "__dict__" in data:
            return {k: unflatten(v, tensors) for k, v in data["__dict__"]}
        return {k: unflatten(v, tensors) for k, v in data.items()}
    if isinstance(data, list):
        return [unflatten(v, tensors) for v in data]
    return data


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": list(np.random.get_state()),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (np_state[0], np.asarray(torch.as_tensor(np_state[1]).numpy(), dtype=np.uint32), *np_state[2:])
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def save_checkpoint(run_dir: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write state for `step`; keep the newest `keep` checkpoints. Returns the checkpoint directory."""
    from safetensors.torch import save_file

    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".step_{step:08d}."))
    try:
        tensors: dict[str, Tensor] = {}
        data = flatten(state, tensors)
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"step": step, "state": data}))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, default_dir_mode())  # mkdtemp's 0700 -> what mkdir would give
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(root / "latest.json", {"step": step, "path": target.name}, indent=None)
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    pointer = Path(run_dir) / "checkpoints" / "latest.json"
    if not pointer.is_file():
        return None
    path = pointer.parent / json.loads(pointer.read_text())["path"]
    return path if path.is_dir() else None


def load_checkpoint(path: str | Path) -> tuple[int, dict[str, Any]]:
    from safetensors.torch import load_file

    path = Path(path)
    meta = json.loads((path / "state.json").read_text())
    tensors = load_file(str(path / "tensors.safetensors"))
    return int(meta["step"]), unflatten(meta["state"], tensors)
