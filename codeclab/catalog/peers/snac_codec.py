"""SNAC (multi-scale neural audio codec, the `snac` package) behind codeclab's `AudioCodec` contract.

SNAC quantizes with residual levels that run at different rates: the 24 kHz model (the one Orpheus-style
TTS uses) has 3 levels of 4096 codes at about 12, 23 and 47 frames per second. codeclab's contract has
one frame rate, so a frame here is one frame of the coarsest level (hop 2048 samples, 11.7 frames/s) and
holds every code that falls inside it, level by level: row 0 is level 0's code, rows 1-2 are level 1's
two codes in time order, rows 3-6 are level 2's four. So `n_q` = 1, 3 and 7 are the whole levels, a
prefix of rows is the coarser levels, and `bitrate(n_q)` counts 12 bits per row. A row count that ends
inside a level encodes as a prefix like any other, and decodes from the complete levels before it (a
level is never decoded from part of its codes). Orpheus writes the 7 codes of a frame in another order
(level 0, level 1's first, level 2's first two, level 1's second, level 2's last two): `orpheus_order`
gives it.

Each item is encoded alone on its audio zero-padded to whole coarse frames (exact batching), and decoded
alone with its decoder's noise drawn from a fixed seed, so a decode is reproducible and the same batched
or single. SNAC has no streaming state here (`codec.streaming()` refuses).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from codeclab._files import read_json_file
from codeclab._optional import optional_import
from codeclab.catalog.peers.item_codec import ItemCodec, peer_weights_needed
from codeclab.catalog.registry import register_codec
from codeclab.codecs.pretrained import (
    CONFIG_FILE,
    PEER_FORMAT_VERSION,
    checked_weights_file,
    codec_meta,
    load_state_into,
    read_config,
    write_weights_dir,
)

HUB_ID = "hubertsiuzdak/snac_24khz"
# hubertsiuzdak/snac_24khz's config.json (19.8 M parameters, 0.98 kbps at n_q = 7)
SNAC_24KHZ = {
    "sampling_rate": 24000,
    "encoder_dim": 48,
    "encoder_rates": [2, 4, 8, 8],
    "decoder_dim": 1024,
    "decoder_rates": [8, 8, 4, 2],
    "attn_window_size": None,
    "codebook_size": 4096,
    "codebook_dim": 8,
    "vq_strides": [4, 2, 1],
    "noise": True,
    "depthwise": True,
}
DECODE_SEED = 0  # the decoder's noise of every item is drawn from this seed
ORPHEUS_ORDER = [0, 1, 3, 4, 2, 5, 6]  # rows of a 3-level frame in the order Orpheus writes its 7 codes


def require_snac():
    return optional_import("snac", "snac", "the SNAC peer codec")


def orpheus_order(codes: Tensor) -> Tensor:
    """codes [..., 7, F] of the 3-level 24 kHz model, rows reordered as Orpheus-style TTS writes a frame."""
    if codes.shape[-2] != len(ORPHEUS_ORDER):
        raise ValueError(f"the Orpheus order is for 7 codes per frame (n_q = 7), got {codes.shape[-2]}")
    return codes[..., ORPHEUS_ORDER, :]


class SnacCodec(ItemCodec):
    """A `snac.SNAC` model (its one submodule, `model`) as a token codec: codes [B, n_q, F] at the coarsest
    level's rate, levels in rows (module doc)."""

    model_class = "SNAC"

    def __init__(
        self, model: Any, snac_config: dict, name: str, random_init: bool, weights: str | None
    ) -> None:
        super().__init__(model, name, random_init, weights)
        self.snac_config = dict(snac_config)

    # -- construction --------------------------------------------------------------------------------
    @classmethod
    def create(
        cls, name: str, weights: str | None = None, random_init: bool = False, device="cpu", seed: int = 0
    ) -> SnacCodec:
        """Random init (seeded) from the published config, or weights from a local directory holding
        SNAC's own files (config.json with pytorch_model.bin or model.safetensors), or a hub id."""
        snac = require_snac()
        if weights is not None and random_init:
            raise ValueError("pass either weights= or random_init=True, not both")
        if random_init:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = snac.SNAC(**SNAC_24KHZ)
            return cls(model.to(device), SNAC_24KHZ, name, True, None)
        if weights is None:
            raise peer_weights_needed(name, HUB_ID, "of its files")
        directory = Path(weights) if Path(weights).is_dir() else _download(str(weights), name)
        config, state = _read_snac_files(directory, name)
        model = snac.SNAC(**config)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"{directory}: the weights do not fit its config.json ({str(err)[:200]})"
            ) from None
        return cls(model.to(device), config, name, False, str(weights))

    # -- facts ---------------------------------------------------------------------------------------
    @property
    def strides(self) -> list[int]:
        return [int(s) for s in self.snac_config["vq_strides"]]

    @property
    def levels(self) -> list[int]:
        """Rows per level in a frame: [1, 2, 4] for the 24 kHz model."""
        coarsest = self.strides[0]
        return [coarsest // s for s in self.strides]

    @property
    def sample_rate(self) -> int:
        return int(self.snac_config["sampling_rate"])

    @property
    def channels(self) -> int:
        return 1

    @property
    def hop_length(self) -> int:
        """Samples per frame: the coarsest level's hop (the finest hop times its stride)."""
        return int(math.prod(self.snac_config["encoder_rates"])) * self.strides[0]

    @property
    def num_codebooks(self) -> int:
        return sum(self.levels)

    @property
    def codebook_size(self) -> int:
        return int(self.snac_config["codebook_size"])

    def describe(self) -> dict:
        info = super().describe()
        info.update(levels=self.levels)
        return info

    # -- contract (item by item: ItemCodec) ------------------------------------------------------------
    def _encode_item(self, x: Tensor, n_q: int) -> Tensor:
        """x [1, 1, frames * hop] -> rows [1, num_codebooks, frames] (every level; the caller keeps n_q)."""
        return self._rows(self.model.encode(x), x.shape[-1] // self.hop_length)[None]

    def _rows(self, levels: list[Tensor], frames: int) -> Tensor:
        """SNAC's per-level codes [1, frames * rows_l] -> rows [sum rows_l, frames], level by level."""
        rows = [
            codes[0, : frames * count].reshape(frames, count).T for codes, count in zip(levels, self.levels)
        ]
        return torch.cat(rows)

    def _decode_item(self, codes: Tensor) -> Tensor:
        """codes [1, n_q, F] -> audio [1, 1, F * hop], the decoder's noise drawn from `DECODE_SEED`."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(DECODE_SEED)
            return self.model.decoder(self._latent(codes[0]))

    def _latent(self, codes: Tensor) -> Tensor:
        """The quantized latent [1, D, frames * finest rows] of the complete levels among rows [n_q, F]."""
        frames = codes.shape[-1]
        quantizers = self.model.quantizer.quantizers
        latent = torch.zeros(
            1, int(self.model.latent_dim), frames * self.levels[-1], device=codes.device, dtype=self.dtype
        )
        start = 0
        for quantizer, count in zip(quantizers, self.levels):
            if start + count > codes.shape[0]:
                break  # a level is decoded from all of its codes or not at all
            level = codes[start : start + count].T.reshape(1, frames * count)
            latent = latent + quantizer.out_proj(quantizer.decode_code(level)).repeat_interleave(
                quantizer.stride, dim=-1
            )
            start += count
        return latent

    # -- saving ----------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """A codec directory `load_codec(directory)` reads back: model.safetensors and a codeclab
        config.json naming the peer, its SNAC config and whether it is random-init."""
        meta = {
            **codec_meta(self.name, self.random_init),
            "format_version": PEER_FORMAT_VERSION,
            "kind": "peer",
            "model_class": self.model_class,
            "snac_config": self.snac_config,
            "weights_origin": self.weights,
        }
        write_weights_dir(directory, self.model.state_dict(), meta)
        return Path(directory)

    @classmethod
    def from_pretrained(  # type: ignore[override]  # a concrete class loads its own directory
        cls, directory: str | Path, device: str | torch.device = "cpu"
    ) -> SnacCodec:
        """Rebuild a SNAC peer written by `save_pretrained`, its weights' sha256 checked first."""
        directory = Path(directory)
        meta = read_config(directory)
        if meta.get("kind") != "peer" or meta.get("model_class") != cls.model_class:
            raise TypeError(
                f"{directory} holds a {meta.get('model_class', meta.get('kind'))} codec, not SNAC"
            )
        return load_saved_snac(directory, meta, device)


def load_saved_snac(directory: Path, meta: dict[str, Any], device: str | torch.device = "cpu") -> SnacCodec:
    """A SNAC peer from its codec directory (meta: its checked config.json)."""
    config = meta.get("snac_config")
    if not isinstance(config, dict) or not isinstance(config.get("vq_strides"), list):
        raise ValueError(f"{directory / CONFIG_FILE}: a SNAC codec directory records its 'snac_config'")
    path, blob = checked_weights_file(directory, meta)
    snac = require_snac()
    try:
        model = snac.SNAC(**config)
    except TypeError as err:
        raise ValueError(
            f"{directory / CONFIG_FILE}: snac_config does not build a SNAC model ({err})"
        ) from None
    load_state_into(model, blob, path)
    random_init = meta.get("random_init") is True
    name = str(meta.get("name"))
    return SnacCodec(model.to(device), config, name, random_init, None if random_init else str(directory))


def _read_snac_files(directory: Path, name: str) -> tuple[dict, dict[str, Tensor]]:
    """(config, state dict) from a directory of SNAC's own files: config.json and model.safetensors, or
    pytorch_model.bin read with torch's weights-only loader (tensors only, no code)."""
    config = read_json_file(directory / "config.json")
    if not isinstance(config, dict) or "vq_strides" not in config:
        raise ValueError(
            f"{directory / 'config.json'}: not a SNAC config (no vq_strides); {name} needs SNAC's files"
        )
    if (directory / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return config, load_file(str(directory / "model.safetensors"))
    bin_path = directory / "pytorch_model.bin"
    if not bin_path.is_file():
        raise FileNotFoundError(
            f"{bin_path}: missing (SNAC's weights: pytorch_model.bin or model.safetensors)"
        )
    try:
        state = torch.load(bin_path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError  # noqa: BLE001
        raise ValueError(
            f"{bin_path}: cannot read these weights ({type(err).__name__}: {str(err)[:120]})"
        ) from None
    return config, state


def _download(repo: str, name: str) -> Path:
    """A hub repository's config.json and weights (needs internet; the message says what to do without)."""
    hub = optional_import("huggingface_hub", "snac", "downloading SNAC weights")
    try:
        return Path(hub.snapshot_download(repo, allow_patterns=["config.json", "*.bin", "*.safetensors"]))
    except Exception as err:  # noqa: BLE001  (hub errors, offline errors)
        raise ValueError(
            f"{name}: cannot download {repo!r} ({type(err).__name__}); without internet, pass weights=DIR "
            "with a local copy of its config.json and weights"
        ) from None


def _factory(weights=None, random_init=False, device="cpu", seed: int = 0) -> SnacCodec:
    return SnacCodec.create("snac-24khz", weights=weights, random_init=random_init, device=device, seed=seed)


register_codec(
    name="snac-24khz",
    family="peer",
    description="SNAC 24 kHz (speech; the Orpheus TTS codec): 3 levels of 4096 codes at 12/23/47 Hz in 7 rows "
    "per 11.7 Hz frame; n_q 1/3/7 = whole levels (0.14/0.42/0.98 kbps)",
    sample_rate=24000,
    channels=1,
    frame_rate=24000 / 2048,
    num_codebooks=7,
    codebook_size=4096,
    source="snac package (pip install codeclab[snac]): snac.SNAC",
    code_licence="MIT",
    weights_licence="MIT",
    weights=HUB_ID,
    causal=False,
    extra={"model_class": "SNAC", "load_saved": load_saved_snac, "package": "snac"},
)(_factory)
