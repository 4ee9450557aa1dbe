"""The house (DESIGN: the house, docs/architecture.md): every import inside codeclab points down the
layers; inside a folder no files import each other in a circle; no module is over 450 lines and no
function over 80. Each check is proven to fail on a planted case."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "codeclab"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80

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
    "codecs": 3,  # the model: contract, NeuralCodec, modules, streaming, the weights-directory format
    "data": 3,  # deprecated re-exports of tokens, for one release
    "catalog": 4,  # names and loads codecs: registry, presets, peers, fingerprints, load_codec
    "teachers": 5,
    "pipelines": 5,
    "train": 6,
    "eval": 7,
    "cli": 8,
}

# Upward imports kept for one release, each inside a deprecated function that says so (CHANGELOG):
# (module, package it reaches up to).
DEPRECATED_SHIMS: set[tuple[str, str]] = {
    ("codecs/base.py", "catalog"),  # AudioCodec.from_pretrained and AudioCodec.provenance()
}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` blocks: imports for annotations only, never run."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imported_modules(source: str, module: str, is_package: bool, runtime_only: bool = False) -> set[str]:
    """Dotted names of the codeclab modules (or names inside them) a module's source imports, at module
    level or inside functions; `runtime_only` leaves out `if TYPE_CHECKING:` imports."""
    tree = ast.parse(source)
    skip = _type_checking_lines(tree) if runtime_only else set()
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "codeclab":
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "codeclab")
    return found


def imported_packages(source: str) -> set[str]:
    """Top-level codeclab packages a module's source imports (at module level or inside functions)."""
    return {
        name.split(".")[1]
        for name in imported_modules(source, "codeclab.x", False)
        if len(name.split(".")) > 1
    }


def upward_imports(
    package: Path, layers: dict[str, int], allowed: set[tuple[str, str]] = frozenset()
) -> list[str]:
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
            if target == own or (rel.as_posix(), target) in allowed:
                continue
            if target not in layers:
                problems.append(f"{rel} -> {target}: no layer")
            elif layers[target] >= layers[own]:
                problems.append(f"{rel} -> {target} (layer {layers[own]} -> {layers[target]})")
    return problems


def _module_names(package: Path) -> dict[str, Path]:
    names = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def circles(package: Path) -> list[list[str]]:
    """Circles of files inside one folder: strongly connected sets of modules of the same top-level
    package that import each other at run time (a package's `__init__` re-exports are left out)."""
    modules = {name: path for name, path in _module_names(package).items() if path.name != "__init__.py"}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def folder(name: str) -> str:
        return ".".join(name.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {resolve(t) for t in imported_modules(path.read_text(), name, False, runtime_only=True)}
        graph[name] = {t for t in targets if t and t != name and folder(t) == folder(name)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def oversized(
    package: Path, max_module: int = MAX_MODULE_LINES, max_function: int = MAX_FUNCTION_LINES
) -> list[str]:
    """Modules over `max_module` lines and functions (or methods) over `max_function` lines."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        source = path.read_text()
        lines = len(source.splitlines())
        if lines > max_module:
            problems.append(f"{rel}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > max_function:
                    problems.append(f"{rel}:{node.lineno} {node.name}: {length} lines")
    return problems


def test_every_import_points_down():
    assert upward_imports(PACKAGE, LAYERS, DEPRECATED_SHIMS) == []


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"


def test_every_folder_of_modules_is_a_package():
    """A folder of modules without __init__.py imports in a checkout but is left out of a built wheel."""
    folders = {path.parent for path in PACKAGE.rglob("*.py")}
    assert sorted(str(f.relative_to(PACKAGE)) for f in folders if not (f / "__init__.py").exists()) == []


def test_no_circle_of_files_inside_a_folder():
    assert circles(PACKAGE) == []


def test_no_module_over_450_lines_and_no_function_over_80():
    assert oversized(PACKAGE) == []


def test_an_upward_import_is_caught(tmp_path):
    fake = tmp_path / "codeclab"
    for name in ("audio", "codecs"):
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text("")
    (fake / "codecs" / "ok.py").write_text("from codeclab.audio.io import read_audio\n")
    (fake / "audio" / "bad.py").write_text("def f():\n    from codeclab.codecs.base import AudioCodec\n")
    assert upward_imports(fake, {"audio": 1, "codecs": 3}) == ["audio/bad.py -> codecs (layer 1 -> 3)"]
    assert upward_imports(fake, {"audio": 1, "codecs": 3}, {("audio/bad.py", "codecs")}) == []


def test_a_circle_inside_a_folder_is_caught(tmp_path):
    fake = tmp_path / "codeclab"
    (fake / "tokens").mkdir(parents=True)
    (fake / "tokens" / "__init__.py").write_text("from codeclab.tokens.a import f\n")
    (fake / "tokens" / "a.py").write_text("from codeclab.tokens.b import g\n")
    (fake / "tokens" / "b.py").write_text("def g():\n    from codeclab.tokens.c import h\n")
    (fake / "tokens" / "c.py").write_text("from . import a\n")  # relative imports count too
    (fake / "tokens" / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from codeclab.tokens.a import f\n"
    )
    (fake / "tokens" / "e.py").write_text("from codeclab.tokens.d import x\n")
    assert circles(fake) == [["codeclab.tokens.a", "codeclab.tokens.b", "codeclab.tokens.c"]]


def test_a_long_module_and_a_long_function_are_caught(tmp_path):
    fake = tmp_path / "codeclab"
    fake.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(80))
    (fake / "long_function.py").write_text(f"def f():\n{body}")  # 81 lines
    (fake / "short_function.py").write_text("def f():\n" + "".join(f"    x{i} = {i}\n" for i in range(79)))
    (fake / "long_module.py").write_text("x = 1\n" * 451)
    assert oversized(fake) == ["long_function.py:1 f: 81 lines", "long_module.py: 451 lines"]
