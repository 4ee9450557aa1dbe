"""Weights on disk: `model.safetensors` + `config.json` (format version, config, sha256 of the weights).

No pickle anywhere. The sha256 recorded at save time is checked on every load, so a truncated download or
a swapped file fails loudly instead of producing wrong codes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from codeclab._files import atomic_write_bytes, read_json_file
from codeclab._version import __version__
from codeclab.codecs.neural import CodecConfig, NeuralCodec
from codeclab.codecs.spec import ADDED_BUFFERS
from codeclab.tokens.entropy import MODEL_FILE as ENTROPY_FILE  # range coding's model (optional)

FORMAT = "codeclab-codec"
FORMAT_VERSION = 1
PEER_FORMAT_VERSION = 2  # a peer's directory (kind "peer"); codeclab versions that read only 1 refuse it
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_pretrained(
    codec: NeuralCodec,
    directory: str | Path,
    extra: dict[str, Any] | None = None,
    storage_dtype: torch.dtype | None = None,
) -> Path:
    """Write `codec` to `directory` (created if needed); returns the directory. Files are written
    atomically, weights first, so an interrupted save never leaves a config pointing at bad weights.
    `storage_dtype` (e.g. torch.float16) stores floating tensors in that type to halve the file; they are
    loaded back into the codec's own (fp32) parameters."""
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, value in codec.state_dict().items():
        value = value.detach().cpu()
        if storage_dtype is not None and value.is_floating_point():
            value = value.to(storage_dtype)
        state[key] = value.contiguous()
    blob = save(state, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    atomic_write_bytes(directory / WEIGHTS_FILE, blob)
    digest = hashlib.sha256(blob).hexdigest()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "codeclab_version": __version__,
        "name": codec.name,
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": digest,
        "config": codec.config.to_dict(),
        "storage_dtype": str(storage_dtype or torch.float32).removeprefix("torch."),
        "random_init": bool(codec.random_init),  # untrained weights stay marked as such
        **(extra or {}),
    }
    model = codec.entropy_model()
    if model is not None:
        model.save(directory)
        meta["entropy_model"] = {**(codec.entropy_record or {}), "file": ENTROPY_FILE, "sha256": model.sha256}
    atomic_write_bytes(directory / CONFIG_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    codec.weights_sha256 = digest
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    """Read and check `config.json` of a saved codec; errors name the file and the problem."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file (a codec directory holds {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    meta = read_json_file(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
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


def weights_file(directory: Path, meta: dict[str, Any]) -> Path:
    """The weights file config.json names: a plain file name inside `directory`, never a path out of it."""
    name = meta.get("weights_file", WEIGHTS_FILE)
    config_path = directory / CONFIG_FILE
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{config_path}: weights_file must be a file name inside {directory}, got {name!r}")
    return directory / name


def load_pretrained(directory: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a codec saved by `save_pretrained` (a NeuralCodec, or a peer saved by its own
    `save_pretrained`), verifying the weights' sha256."""
    from safetensors.torch import load

    directory = Path(directory)
    try:
        meta = read_config(directory)
    except ValueError as err:
        hint = transformers_folder_hint(directory)
        if hint is not None:
            raise ValueError(hint) from err
        raise
    if meta.get("kind") == "peer":
        from codeclab.codecs.peers.hf import load_saved_peer

        return load_saved_peer(directory, meta, device=device)
    weights_path = weights_file(directory, meta)
    try:  # every field type- and range-checked before a byte of weights is read or a module is built
        config = CodecConfig.from_dict(meta.get("config"))
    except ValueError as err:
        raise ValueError(f"{directory / CONFIG_FILE}: {err}") from err
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: weights file missing")
    try:
        blob = weights_path.read_bytes()
    except OSError as err:
        raise FileNotFoundError(f"{weights_path}: cannot read the weights ({err})") from err
    digest = hashlib.sha256(blob).hexdigest()
    expected = meta.get("weights_sha256")
    if digest != expected:
        raise ValueError(
            f"{weights_path}: sha256 mismatch (config.json expects {expected}, the file has {digest}); "
            "the weights are corrupt or do not belong to this config"
        )
    codec = NeuralCodec.from_config(config, name=meta.get("name", directory.name))
    try:
        state = load(blob)
        missing, unexpected = codec.load_state_dict(state, strict=False)
    except Exception as err:  # safetensors' own error type, torch's size mismatch  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ValueError(f"{weights_path}: the weights do not fit the config ({first})") from None
    missing = [key for key in missing if key.rsplit(".", 1)[-1] not in ADDED_BUFFERS]
    if missing or unexpected:
        raise ValueError(
            f"{weights_path}: weights do not match the config (missing {missing}, unexpected {unexpected})"
        )
    codec.weights_sha256 = digest
    codec.random_init = meta.get("random_init") is True
    attach_entropy_model(codec, directory, meta)
    return codec.to(device).eval()


def attach_entropy_model(codec, directory: Path, meta: dict[str, Any]) -> None:
    """Point `codec` at the entropy model config.json records (loaded, and its sha256 checked, on first
    use by `codec.entropy_model()`); a record without its file is an error naming the file."""
    record = meta.get("entropy_model")
    if record is None:
        return
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        raise ValueError(f"{directory / CONFIG_FILE}: 'entropy_model' must be an object with a 'sha256'")
    path = directory / ENTROPY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: entropy model missing (config.json records one)")
    codec.entropy_record, codec.entropy_path = record, path


def record_entropy_model(directory: str | Path, model, record: dict[str, Any]) -> dict[str, Any]:
    """Write `model` beside the weights in `directory` and record it (sha256 and `record`, e.g. what it
    was fitted on and its held-out rates) in config.json. Returns the record as written."""
    directory = Path(directory)
    meta = read_config(directory)
    model.save(directory)
    meta["entropy_model"] = {**record, "file": ENTROPY_FILE, "sha256": model.sha256}
    atomic_write_bytes(directory / CONFIG_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    return meta["entropy_model"]
