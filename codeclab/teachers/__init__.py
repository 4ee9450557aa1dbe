"""Teachers for semantic distillation: a contract, Hugging Face SSL adapters, codeclab's offline phone
teacher, and an on-disk feature cache.

`load_teacher(spec)` accepts `DIR` (a phone teacher saved by `codeclab teacher train`, or a transformers
model directory) or a hub id, optionally followed by `:LAYER` (an integer or `avg`) for transformers models.
"""

from __future__ import annotations

from pathlib import Path

from codeclab.teachers.base import Teacher, codec_frame_times, features_at


def split_spec(spec: str) -> tuple[str, str | None]:
    """ "path:9" -> ("path", "9"); "path:avg" -> ("path", "avg"); "path" -> ("path", None). The codec
    grammar's parser splits it (`codeclab.catalog.ref.split_ref`): a teacher's bare value is its layer."""
    from codeclab.catalog.ref import split_ref

    source, weights, tail = split_ref(spec)
    if weights is not None:
        raise ValueError(f"{spec}: a teacher spec is SOURCE[:LAYER]; it takes no @WEIGHTS")
    if tail.isdigit() or tail in ("avg", "mean"):
        return source, tail
    return spec, None  # no layer: the colon is part of the source's name


def load_teacher(spec: str, device: str = "cpu") -> Teacher:
    """A teacher from a spec string (see the module docstring)."""
    from codeclab.teachers.phone import CONFIG_FILE, PhoneTeacher

    source, layer = split_spec(spec)
    path = Path(source)
    if (path / CONFIG_FILE).is_file():
        if layer is not None:
            raise ValueError(f"{spec}: a phone teacher has no layers (its features are phone posteriors)")
        return PhoneTeacher.load(path)
    if path.exists() and not (path / "config.json").is_file():
        raise ValueError(
            f"{source}: neither a phone teacher ({CONFIG_FILE}) nor a transformers model (config.json)"
        )
    from codeclab.teachers.hf import HFTeacher

    return HFTeacher.from_pretrained(source, layer if layer is not None else "avg", device=device)


__all__ = ["Teacher", "features_at", "codec_frame_times", "load_teacher", "split_spec"]
