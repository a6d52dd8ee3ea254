"""The layering is enforced: import-linter's contracts (pyproject.toml) hold, and break
on an upward import (CONTRIBUTING.md, "The layers")."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404: runs the project's own lint-imports
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kernel", "events", "workspaces", "history", "adapters", "sysadmin", "eventsproject")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
IGNORED = shutil.ignore_patterns("__pycache__")


def copy_of_the_code(where: Path) -> Path:
    """The project's packages and contracts, in a folder of their own."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, where / package, ignore=IGNORED)
    shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
    return where


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the code in ``where``, as the quality gate runs it."""
    return subprocess.run(  # noqa: S603  # nosec B603: a fixed command line
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": str(LINT_IMPORTS.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def code(tmp_path: Path) -> Path:
    return copy_of_the_code(tmp_path)


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_code_keeps_every_contract(code):
    result = lint_imports(code)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(code):
    add_import(code / "kernel" / "ids.py", "import adapters.http.urls")

    result = lint_imports(code)

    assert result.returncode != 0
    assert "Layers: wiring" in result.stdout
    assert "BROKEN" in result.stdout
    assert "kernel.ids -> adapters.http.urls" in result.stdout


def test_channels_below_the_adapters_breaks_its_contract(code):
    add_import(code / "events" / "realtime" / "hub.py", "import channels.layers")

    result = lint_imports(code)

    assert result.returncode != 0
    assert "No Channels, DRF or ASGI server below the adapters BROKEN" in result.stdout


def test_a_cycle_inside_a_package_breaks_its_contract(code):
    add_import(code / "history" / "base.py", "import history.query")

    result = lint_imports(code)

    assert result.returncode != 0
    assert "No import cycles between the modules of any package BROKEN" in result.stdout


def test_the_hub_importing_the_archive_queue_breaks_its_contract(code):
    add_import(code / "events" / "realtime" / "hub.py", "import events.broker.archive_queue")

    result = lint_imports(code)

    assert result.returncode != 0
    assert "use the live stream port only BROKEN" in result.stdout
