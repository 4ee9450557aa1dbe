"""Every import inside codeclab points down the layers of docs/architecture (DESIGN: the house)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "codeclab"

# Lower numbers sit lower. A module may import only packages of a strictly lower layer (or its own).
LAYERS: dict[str, int] = {
    "_version": 0,
    "_files": 0,
    "_checks": 0,
    "_launch": 0,
    "_progress": 0,
    "_optional": 0,
    "audio": 1,
    "cuda_ext": 1,
    "tokens": 2,
    "corpora": 2,
    "quantizers": 2,
    "codecs": 3,
    "data": 3,  # deprecated re-exports of tokens, for one release
    "teachers": 4,
    "pipelines": 4,
    "train": 5,
    "eval": 6,
    "cli": 7,
}


def imported_packages(source: str) -> set[str]:
    """Top-level codeclab packages a module's source imports (at module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "codeclab":
            if node.module == "codeclab":
                names = [f"codeclab.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.split(".")[0] == "codeclab"]
        for name in names:
            parts = name.split(".")
            if len(parts) > 1:
                found.add(parts[1])
    return found


def upward_imports(package: Path, layers: dict[str, int]) -> list[str]:
    """'module -> package' for every import that does not point to a strictly lower layer."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if len(rel.parts) == 1:
            continue  # the package facade (codeclab/__init__.py) and _version.py
        own = rel.parts[0]
        if own not in layers:
            problems.append(f"{rel}: package {own!r} has no layer")
            continue
        for target in imported_packages(path.read_text()):
            if target == own:
                continue
            if target not in layers:
                problems.append(f"{rel} -> {target}: no layer")
            elif layers[target] >= layers[own]:
                problems.append(f"{rel} -> {target} (layer {layers[own]} -> {layers[target]})")
    return problems


def test_every_import_points_down():
    assert upward_imports(PACKAGE, LAYERS) == []


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"


def test_an_upward_import_is_caught(tmp_path):
    fake = tmp_path / "codeclab"
    for name in ("audio", "codecs"):
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text("")
    (fake / "codecs" / "ok.py").write_text("from codeclab.audio.io import read_audio\n")
    (fake / "audio" / "bad.py").write_text("def f():\n    from codeclab.codecs.base import AudioCodec\n")
    assert upward_imports(fake, {"audio": 1, "codecs": 3}) == ["audio/bad.py -> codecs (layer 1 -> 3)"]
