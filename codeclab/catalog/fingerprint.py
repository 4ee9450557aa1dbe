"""What a codec is, in digests: how a token store, a .clab file or a report records the codec that made
it, and how the codes are reopened with exactly that codec.

A `CodecRef` (`catalog.ref`) says how to load the codec (registry name, saved directory, random init and
seed, weights location); `fingerprint` adds sha256 digests of its config and of its weights' tensors, so
a store refuses to mix codes from different weights and `detokenize` refuses to decode with the wrong
codec (`open_recorded_codec`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from codeclab.catalog.ref import CodecRef
from codeclab.catalog.registry import entries
from codeclab.codecs.base import AudioCodec
from codeclab.codecs.pretrained import ADDED_BUFFERS


def weights_sha256(codec: AudioCodec) -> str | None:
    """sha256 over the codec's tensors (sorted names, dtypes, shapes and bytes); None for codecs with
    no tensors (e.g. Opus). Unlike a file hash, it does not depend on how the weights were stored.
    `ADDED_BUFFERS` still at their neutral value (all zeros) are left out: they do not change what the
    codec computes, and leaving them out keeps the digest that older versions recorded."""
    state_dict = getattr(codec, "state_dict", None)
    if state_dict is None:
        return None
    digest = hashlib.sha256()
    state = state_dict()
    if not state:
        return None
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        if name.rsplit(".", 1)[-1] in ADDED_BUFFERS and not bool(t.any()):
            continue
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def config_sha256(codec: AudioCodec) -> str:
    to_dict = getattr(getattr(codec, "config", None), "to_dict", None)
    data = to_dict() if callable(to_dict) else codec.describe()
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def codec_facts(codec: AudioCodec) -> dict[str, Any]:
    """What a report or store records about a codec: name, sha256 of its config and of its tensors
    (independent of how the weights were stored), and whether it is random-init."""
    return {
        "name": codec.name,
        "config_sha256": config_sha256(codec),
        "weights_sha256": weights_sha256(codec),
        "random_init": bool(codec.random_init),
    }


def fingerprint(codec: AudioCodec, spec: CodecRef) -> dict[str, Any]:
    """What stores and .clab headers record about the codec that made them: how to load it (`spec`) and
    the digests of `codec_facts`, the one place codec digests are made (reports record the same)."""
    facts = codec_facts(codec)
    return {
        **spec.to_dict(),
        "codec": facts["name"],
        "config_sha256": facts["config_sha256"],
        "weights_sha256": facts["weights_sha256"],
    }


def _has_tensors(spec: CodecRef) -> bool:
    """True when `spec` names a registered token codec (codeclab preset or peer), which has weights."""
    entry = entries().get(spec.name)
    return entry is not None and entry.family in ("codeclab", "peer")


def open_recorded_codec(
    record: dict[str, Any], override: CodecRef | None = None, device: str | torch.device = "cpu"
) -> AudioCodec:
    """Reopen the codec a store or file recorded (or `override`), checking its weights' sha256."""
    spec = override or CodecRef.from_dict(record)
    if override is None and record.get("weights_sha256") is None and _has_tensors(spec):
        # refused before the model is built (a peer takes seconds and hundreds of MB to build)
        raise ValueError(
            f"the record of codec {spec.name!r} does not give its weights' sha256, so the codes cannot be "
            "checked against it; pass the codec (--codec/--weights) to decode them anyway"
        )
    try:
        codec = spec.load(device)
    except (OSError, ImportError, ValueError) as err:
        raise ValueError(f"cannot open the codec {spec.name!r} that made the codes: {err}") from err
    expected = record.get("weights_sha256")
    if expected is not None and not isinstance(expected, str):
        raise ValueError(
            f"the record of codec {spec.name!r} has a weights sha256 that is not text: {expected!r}"
        )
    recorded_config = record.get("config_sha256")
    if isinstance(recorded_config, str) and len(recorded_config) >= 16 and override is None:
        # a config.json edited in ways that keep the tensor shapes (causal flags, sample rate) would
        # decode the codes into other audio with the same weights
        actual_config = config_sha256(codec)
        if not actual_config.startswith(recorded_config):
            raise ValueError(
                f"codec {spec.name!r} has config sha256 {actual_config[:16]}..., but the codes were made with "
                f"{recorded_config[:16]}...: its config.json changed since; pass the codec (--codec/--weights) "
                "that made them"
            )
    actual = weights_sha256(codec) or ""
    if expected is None and actual and override is None:
        raise ValueError(
            f"the record of codec {spec.name!r} does not give its weights' sha256, so the codes cannot be "
            "checked against it; pass the codec (--codec/--weights) to decode them anyway"
        )
    # .clab headers keep a 16-hex-digit prefix of the digest; stores keep all of it
    if expected is not None and not (len(expected) >= 16 and actual.startswith(expected)):
        raise ValueError(
            f"codec {spec.name!r} has weights sha256 {actual}, but the codes were made with {expected}; "
            "pass the codec (--codec/--weights) that made them"
        )
    return codec
