"""Weights on disk: a weights file (safetensors) + a JSON config that records its sha256.

The one writer (`write_weights_dir`) and reader (`read_weights_dir`, `checked_weights_file`) of that
format, knowing no model class: `NeuralCodec` saves and loads itself through them, and so do peers
(catalog/peers) and the phone teacher. No pickle anywhere. The sha256 recorded at save time is checked on
every load, so a truncated download or a swapped file fails loudly instead of producing wrong codes; the
weights file a config names stays inside its directory.

A codec directory's `config.json` (`FORMAT`, checked by `read_config`) may record the entropy model that
ships with the weights (`entropy.safetensors`); `attach_entropy_model` hands it to the loaded codec.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import Tensor

from codeclab._files import atomic_write_bytes, atomic_write_json, read_json_file
from codeclab._version import __version__
from codeclab.tokens.entropy import MODEL_FILE as ENTROPY_FILE  # range coding's model (optional)
from codeclab.tokens.entropy import EntropyError, EntropyModel

FORMAT = "codeclab-codec"
FORMAT_VERSION = 1
PEER_FORMAT_VERSION = 2  # a peer's directory (kind "peer"); codeclab versions that read only 1 refuse it
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

# Buffers added after weight directories were first written, and why leaving them at their initial value
# loads old weights exactly as they ran: the one explicit list of keys an older directory may lack.
ADDED_BUFFERS: dict[str, str] = {
    "latent_mean": "RVQ centring: zero offset = the uncentred quantizer the weights were trained with",
    "mean_initted": "RVQ centring: set by the first training step",
}


def write_weights_dir(
    directory: str | Path,
    state: dict[str, Tensor],
    meta: dict[str, Any],
    config_file: str = CONFIG_FILE,
    storage_dtype: torch.dtype | None = None,
    safetensors_metadata: dict[str, str] | None = None,
) -> str:
    """Write `state` as `model.safetensors` and `meta` (plus `weights_file` and `weights_sha256`) as
    `config_file` in `directory` (created if needed). Weights first, each file atomically, so an
    interrupted save never leaves a config pointing at bad weights. `storage_dtype` (e.g. torch.float16)
    stores floating tensors in that type. Returns the weights' sha256."""
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, value in state.items():
        value = value.detach().cpu()
        if storage_dtype is not None and value.is_floating_point():
            value = value.to(storage_dtype)
        tensors[key] = value.contiguous()
    blob = save(tensors, metadata=safetensors_metadata)
    atomic_write_bytes(directory / WEIGHTS_FILE, blob)
    digest = hashlib.sha256(blob).hexdigest()
    atomic_write_json(
        directory / config_file, {**meta, "weights_file": WEIGHTS_FILE, "weights_sha256": digest}
    )
    return digest


def weights_file(
    directory: Path, meta: dict[str, Any], config_file: str = CONFIG_FILE, subfolder: str | None = None
) -> Path:
    """The weights file the config names (default `model.safetensors`): a plain file name inside
    `directory`, or inside its `subfolder` when one is given (a saved peer keeps its model there); never
    a path out of it."""
    name = meta.get("weights_file", WEIGHTS_FILE)
    parts = PurePosixPath(name).parts if isinstance(name, str) else ()
    depth = (1,) if subfolder is None else (1, 2)
    if (
        not parts
        or "\\" in name
        or name.startswith("/")
        or any(p in (".", "..") for p in parts)
        or len(parts) not in depth
        or (len(parts) == 2 and parts[0] != subfolder)
    ):
        raise ValueError(
            f"{directory / config_file}: weights_file must be a file name inside {directory}, got {name!r}"
        )
    return directory.joinpath(*parts)


def checked_weights_file(
    directory: str | Path, meta: dict[str, Any], config_file: str = CONFIG_FILE, subfolder: str | None = None
) -> tuple[Path, bytes]:
    """(path, bytes) of the weights file `meta` names (`weights_file`), after checking it exists, is
    readable and has the sha256 `meta` records; each failure names the file."""
    directory = Path(directory)
    path = weights_file(directory, meta, config_file, subfolder)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file missing")
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise FileNotFoundError(f"{path}: cannot read the weights ({err})") from err
    digest = hashlib.sha256(blob).hexdigest()
    expected = meta.get("weights_sha256")
    if digest != expected:
        raise ValueError(
            f"{path}: sha256 mismatch ({config_file} expects {expected}, the file has {digest}); the weights "
            "are corrupt or do not belong to this config"
        )
    return path, blob


def load_state_into(
    module: torch.nn.Module, blob: bytes, path: Path, optional: dict[str, str] | None = None
) -> None:
    """Load safetensors `blob` (read from `path`) into `module`, exactly: a missing or unexpected key, or a
    shape that does not fit, is a ValueError naming the file. Keys whose last part is in `optional` may be
    missing (they keep their initial value)."""
    from safetensors.torch import load

    try:
        missing, unexpected = module.load_state_dict(load(blob), strict=False)
    except Exception as err:  # safetensors' own error type, torch's size mismatch  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: the weights do not fit the config ({first})") from None
    missing = [key for key in missing if key.rsplit(".", 1)[-1] not in (optional or {})]
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not match the config (missing {missing}, unexpected {unexpected})"
        )


def codec_meta(name: str, random_init: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields every codec directory's config.json starts with (format, versions, name)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "codeclab_version": __version__,
        "name": name,
        "random_init": bool(random_init),  # untrained weights stay marked as such
        **(extra or {}),
    }


def read_config(directory: str | Path) -> dict[str, Any]:
    """Read and check `config.json` of a saved codec; errors name the file and the problem."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file (a codec directory holds {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    meta = read_json_file(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        hint = transformers_folder_hint(Path(directory))
        if hint is not None:
            raise ValueError(hint)
        raise ValueError(
            f"{path}: not a codeclab codec config (format {meta.get('format') if isinstance(meta, dict) else None!r})"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version > PEER_FORMAT_VERSION:
        raise ValueError(
            f"{path}: format version {version!r} is newer than this codeclab ({__version__}) reads "
            f"(up to {PEER_FORMAT_VERSION}); upgrade codeclab"
        )
    name = meta.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        raise ValueError(f"{path}: 'name' must be a string of 1 to 200 characters, got {str(name)[:40]!r}")
    kind = meta.get("kind", "neural")
    if kind not in ("neural", "peer"):
        raise ValueError(f"{path}: unknown codec kind {kind!r} (known: 'neural', 'peer')")
    return meta


def transformers_folder_hint(directory: Path) -> str | None:
    """For a folder written by a transformers model's own `save_pretrained`: how to load it instead."""
    try:
        hf = json.loads((directory / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(hf, dict) or not isinstance(hf.get("model_type"), str):
        return None
    return (
        f"{directory} is a transformers model folder ({hf['model_type']}), not a codec directory: load it "
        f"with load_codec(PEER, weights={str(directory)!r}) (PEER from `codeclab list`), or save a loaded "
        "peer with codec.save_pretrained(DIR)"
    )


class ShippedEntropyModel:
    """The entropy model a codec directory ships (`entropy.safetensors`, recorded in config.json with its
    sha256): loaded and checked on first call, then cached."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path, self.record = path, record
        self._model: EntropyModel | None = None

    def __call__(self, codebook_size: int, num_codebooks: int, codec_name: str) -> EntropyModel:
        if self._model is not None:
            return self._model
        try:
            model = EntropyModel.load(self.path)
        except EntropyError as err:
            raise ValueError(str(err)) from err
        expected = self.record.get("sha256")
        if model.sha256 != expected:
            raise ValueError(
                f"{self.path}: entropy model sha256 {model.sha256} is not the {expected} that config.json "
                "records; the file is corrupt or belongs to other weights"
            )
        if model.codebook_size != codebook_size or model.n_q < num_codebooks:
            raise ValueError(f"{self.path}: the entropy model does not fit codec {codec_name}'s codebooks")
        self._model = model
        return model


def attach_entropy_model(codec: Any, directory: Path, meta: dict[str, Any]) -> None:
    """Give `codec` the entropy model config.json records (loaded, and its sha256 checked, on first use by
    `codec.entropy_model()`); a record without its file is an error naming the file."""
    record = meta.get("entropy_model")
    if record is None:
        return
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        raise ValueError(f"{directory / CONFIG_FILE}: 'entropy_model' must be an object with a 'sha256'")
    path = directory / ENTROPY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: entropy model missing (config.json records one)")
    codec.entropy_record, codec.entropy_source = record, ShippedEntropyModel(path, record)


def save_entropy_model(directory: Path, model: EntropyModel, record: dict[str, Any] | None) -> dict[str, Any]:
    """Write `model` beside the weights; the record config.json keeps of it."""
    model.save(directory)
    return {**(record or {}), "file": ENTROPY_FILE, "sha256": model.sha256}


def record_entropy_model(
    directory: str | Path, model: EntropyModel, record: dict[str, Any]
) -> dict[str, Any]:
    """Write `model` beside the weights in `directory` and record it (sha256 and `record`, e.g. what it
    was fitted on and its held-out rates) in config.json. Returns the record as written."""
    directory = Path(directory)
    meta = read_config(directory)
    meta["entropy_model"] = save_entropy_model(directory, model, record)
    atomic_write_json(directory / CONFIG_FILE, meta)
    return meta["entropy_model"]
