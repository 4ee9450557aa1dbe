"""Peer codecs from Hugging Face transformers behind codeclab's `AudioCodec` contract.

What the adapter adds to the transformers models:
- One code layout: codes [B, n_q, F] int64 with per-item `lengths` (the models return 3-d or 4-d tensors).
- Exact batching: every item is encoded (and decoded) on its own, on its audio zero-padded to a whole
  number of frames, so a padded batch gives exactly the codes each item gets alone. The models themselves
  do not promise that: HF Mimi gives different codes batched and single (transformers#43377), and CPU
  kernels change rounding with the batch shape. The cost is per-item calls (no batching speed-up).
- `n_q` at encode time, mapped onto each model's own knob (bandwidth or number of quantizers). Where a model
  offers only some counts (EnCodec, X-Codec bandwidths), the adapter encodes at the next larger one and keeps
  the first n_q codebooks: residual quantization makes those identical to the smaller setting's codes.
- Weights: `weights=` a local directory or hub id (`from_pretrained`), or `random_init=True` (seeded; for
  tests and speed comparisons, and reported as such); neither is a clear error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from codeclab._files import atomic_write_json
from codeclab._optional import install_hint
from codeclab.catalog.peers.item_codec import ItemCodec, peer_weights_needed
from codeclab.codecs.base import UnsupportedDtype
from codeclab.codecs.pretrained import (
    CONFIG_FILE,
    PEER_FORMAT_VERSION,
    checked_weights_file,
    codec_meta,
    read_config,
)

SAVED_MODEL_DIR = "transformers"  # where save_pretrained puts the transformers model inside a codec directory

PEERS_HINT = install_hint("peers") + " (Hugging Face transformers)"


def require_transformers(purpose: str = "peer codecs"):
    """transformers, checked to import with a torchaudio that works (ImportError saying what to install,
    naming `purpose`: peer codecs here, Hugging Face teachers in `teachers/hf.py`)."""
    try:
        import transformers
    except ImportError as err:
        raise ImportError(f"{purpose} need transformers: {PEERS_HINT}") from err
    _check_torchaudio()
    return transformers


def _check_torchaudio() -> None:
    """transformers imports torchaudio whenever it is installed; a build that does not match the installed
    torch then fails deep inside a model import. Say so plainly instead."""
    import importlib.util

    if importlib.util.find_spec("torchaudio") is None:
        return
    try:
        import torchaudio  # noqa: F401
    except Exception as err:
        raise ImportError(
            f"torchaudio is installed but does not import with torch {torch.__version__} "
            f"({type(err).__name__}: {str(err).splitlines()[0][:120]}); transformers imports it for audio "
            "models. Install the torchaudio build that matches torch, or `pip uninstall torchaudio`."
        ) from err


class TransformersCodec(ItemCodec):
    """Base adapter, an `nn.Module` whose one submodule is the transformers model (so `.to(device or
    dtype)`, `.parameters()` and `.eval()` act on it; `state_dict()` is the model's own, unprefixed).
    Subclasses set `model_class`, build `default_config()`, and implement
    `_encode_item(x [1, C, T], n_q) -> [1, n_q', F]` (n_q' >= n_q) and `_decode_item(codes [1, n_q, F])`."""

    model_class: str = ""
    hub_id: str = ""

    # -- construction --------------------------------------------------------------------------------
    @classmethod
    def default_config(cls):
        raise NotImplementedError

    @classmethod
    def create(
        cls, name: str, weights: str | None = None, random_init: bool = False, device="cpu", seed: int = 0
    ):
        transformers = require_transformers()
        model_cls = getattr(transformers, cls.model_class)
        if weights is not None:
            if random_init:
                raise ValueError("pass either weights= or random_init=True, not both")
            try:
                model = model_cls.from_pretrained(str(weights))
            except (OSError, RuntimeError, ValueError, TypeError) as err:
                first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                raise ValueError(f"{name}: cannot load weights from {weights!r} ({first})") from err
        elif random_init:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = model_cls(cls.default_config())
        else:
            raise peer_weights_needed(name, cls.hub_id, "saved from it")
        return cls(
            model.to(device),
            name,
            random_init=weights is None,
            weights=None if weights is None else str(weights),
        )

    # -- facts ---------------------------------------------------------------------------------------
    @property
    def config(self):
        return self.model.config

    @property
    def sample_rate(self) -> int:
        return int(self.config.sampling_rate)

    @property
    def channels(self) -> int:
        return int(getattr(self.config, "audio_channels", 1))

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:  # type: ignore[override]
        """The transformers model's state dict (keys without a `model.` prefix, as `from_pretrained` has them)."""
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, *args: Any, **kwargs: Any) -> Any:
        return self.model.load_state_dict(state_dict, *args, **kwargs)

    # -- saving ----------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write a codec directory `load_codec(directory)` reads back: the transformers model's own
        `save_pretrained` output (its config.json and model.safetensors) in `transformers/`, and a codeclab
        config.json naming the peer, whether it is random-init, and the sha256 of the weights file."""
        directory = Path(directory)
        model_dir = directory / SAVED_MODEL_DIR
        model_dir.mkdir(parents=True, exist_ok=True)
        # one file, whatever the model's size: the sha256 in config.json covers one weights file
        self.model.save_pretrained(str(model_dir), safe_serialization=True, max_shard_size="1000GB")
        weights = model_dir / "model.safetensors"
        meta = {
            **codec_meta(self.name, self.random_init),
            "format_version": PEER_FORMAT_VERSION,
            "kind": "peer",
            "model_class": self.model_class,
            "weights_file": f"{SAVED_MODEL_DIR}/model.safetensors",
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            # every other file of the transformers folder (its config.json above all) decides what the
            # weights mean: each is covered by a digest checked before the model is built
            "files_sha256": _folder_digests(model_dir, skip={"model.safetensors"}),
            "weights_origin": self.weights,
        }
        atomic_write_json(directory / CONFIG_FILE, meta)
        return directory

    @classmethod
    def from_pretrained(  # type: ignore[override]  # a concrete class loads its own directory
        cls, directory: str | Path, device: str | torch.device = "cpu"
    ) -> TransformersCodec:
        """Rebuild a peer written by `save_pretrained` (its files' sha256 checked first); a directory
        holding another kind of codec raises TypeError."""
        directory = Path(directory)
        meta = read_config(directory)
        if meta.get("kind") != "peer":
            raise TypeError(f"{directory} holds a {meta.get('kind', 'neural')} codec, not a {cls.__name__}")
        codec = load_saved_peer(directory, meta, device=device)
        if not isinstance(codec, cls):
            raise TypeError(f"{directory} holds a {type(codec).__name__}, not a {cls.__name__}")
        return codec

    # -- contract --------------------------------------------------------------------------------------
    @contextmanager
    def _dtype_errors(self, what: str) -> Iterator[None]:
        """Turn a transformers model's dtype failure after `.to(torch.bfloat16)` (some models keep float32
        pieces) into `UnsupportedDtype` naming the codec and the type."""
        try:
            yield
        except RuntimeError as err:
            if self.dtype == torch.float32:
                raise
            import transformers

            raise UnsupportedDtype(
                f"{self.name} cannot {what} in {self.dtype} with transformers {transformers.__version__} "
                f"({str(err).splitlines()[0][:120]}); move it back with codec.float()"
            ) from err


def smallest_setting(options: dict[float, int], n_q: int) -> float:
    """The setting (e.g. a bandwidth) with the fewest codebooks that still gives at least n_q."""
    enough = [setting for setting, count in options.items() if count >= n_q]
    return min(enough, key=lambda s: options[s])


def _folder_digests(folder: Path, skip: set[str]) -> dict[str, str]:
    """sha256 of every file in `folder` (names relative to it) but those in `skip`."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def load_saved_peer(
    directory: Path, meta: dict[str, Any], device: str | torch.device = "cpu"
) -> TransformersCodec:
    """Rebuild a peer written by `TransformersCodec.save_pretrained` (meta: its checked config.json),
    verifying the weights' sha256 first."""
    from codeclab.catalog.registry import get_entry

    config_path = directory / CONFIG_FILE
    name = meta.get("name")
    entry = get_entry(name) if isinstance(name, str) else None
    if entry is None or entry.family != "peer":
        raise ValueError(
            f"{config_path}: kind 'peer' needs the name of a registered peer codec, got {name!r}"
        )
    recorded_class = meta.get("model_class")
    expected_class = entry.extra.get("model_class")
    if expected_class is not None and recorded_class != expected_class:
        raise ValueError(
            f"{config_path}: {name} is a {expected_class}, but the saved model is a {recorded_class!r}; the "
            "name in config.json does not belong to these files"
        )
    model_dir = directory / SAVED_MODEL_DIR
    recorded = meta.get("files_sha256")
    if recorded is not None:  # directories saved before this check have none (their config is trusted)
        if not isinstance(recorded, dict):
            raise ValueError(f"{config_path}: files_sha256 must be an object")
        actual = _folder_digests(model_dir, skip={"model.safetensors"})
        changed = sorted(set(recorded) ^ set(actual) | {f for f in recorded if actual.get(f) != recorded[f]})
        if changed:
            raise ValueError(
                f"{model_dir / changed[0]}: differs from what {config_path} recorded (edited, added or "
                "removed since the codec was saved)"
            )
    expected_file = f"{SAVED_MODEL_DIR}/model.safetensors"  # what transformers loads from the folder
    if meta.get("weights_file", expected_file) != expected_file:
        raise ValueError(f"{config_path}: a saved peer's weights_file is {expected_file!r}")
    checked_weights_file(directory, {**meta, "weights_file": expected_file}, subfolder=SAVED_MODEL_DIR)
    codec = entry.factory(weights=str(directory / SAVED_MODEL_DIR), device=device)
    if not isinstance(codec, TransformersCodec):
        raise TypeError(f"{config_path}: {name} is not a transformers peer")
    codec.random_init = meta.get("random_init") is True
    codec.weights = None if codec.random_init else str(directory)
    return codec
