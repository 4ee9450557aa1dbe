"""`make test` runs mypy on the package with the settings in pyproject.toml ([tool.mypy]); these tests
show that those settings catch a type error in new code (and let correct code through)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="the type check needs mypy (the dev extras install it)")

ROOT = Path(__file__).resolve().parent.parent


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    module = tmp_path / "planted.py"
    module.write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-incremental",
            "--follow-imports",
            "silent",
            str(module),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_a_planted_type_error_fails_the_check(tmp_path):
    bad = mypy(
        tmp_path,
        "from codeclab.tokens.store_layout import StoreLayout\n\n\n"
        "def count(layout: StoreLayout) -> int:\n    return layout.index\n",
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert 'Incompatible return value type (got "Path", expected "int")' in bad.stdout


def test_correct_code_passes_the_check(tmp_path):
    good = mypy(
        tmp_path,
        "from pathlib import Path\n\nfrom codeclab.tokens.store_layout import StoreLayout\n\n\n"
        "def index(layout: StoreLayout) -> Path:\n    return layout.index\n",
    )
    assert good.returncode == 0, good.stdout + good.stderr
