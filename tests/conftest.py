"""Shared pytest fixtures.

GUI tests use napari's ``make_napari_viewer`` fixture (from napari's pytest
plugin) on a virtual X server (pytest-xvfb) with Mesa OpenGL; Qt's
``offscreen`` platform has no OpenGL and crashes on Image layers.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# Qt's offscreen platform has no OpenGL and crashes on Image layers: the GUI
# tests run on Xvfb (pytest-xvfb) with Mesa instead.
if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
    del os.environ["QT_QPA_PLATFORM"]

REPO = Path(__file__).resolve().parents[1]
#: ``../shared/data`` beside the checkout (present in CI and on dev machines).
SHARED_DATA = Path(
    os.environ.get("NAPARI_INTERFACES_SHARED_DATA", REPO.parent / "shared" / "data")
)
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Never read or write the developer's real config and cache."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("NAPARI_INTERFACES_CONFIG_DIR", str(base / "user-config"))
    monkeypatch.setenv("NAPARI_INTERFACES_CACHE_DIR", str(base / "user-cache"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; skips the test with a message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set NAPARI_INTERFACES_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def test_data() -> Path:
    """``tests/data``: small fixtures shipped with the repo."""
    return TEST_DATA


def console_script() -> Path | None:
    """The ``napari-interfaces`` console script installed beside this Python.

    Found next to :data:`sys.executable` (``.venv/bin`` or ``Scripts``), never
    through ``PATH``: the README runs ``.venv/bin/python -m pytest`` without
    activating the venv.
    """
    exe = shutil.which("napari-interfaces", path=str(Path(sys.executable).parent))
    return Path(exe) if exe else None


@pytest.fixture
def cli_cmd() -> list[str]:
    """The command line that runs the CLI in a subprocess, independent of ``PATH``.

    The console script beside :data:`sys.executable` when installed, else
    ``python -m napari_interfaces``. Use as ``subprocess.run([*cli_cmd, "info"])``.
    """
    exe = console_script()
    return [str(exe)] if exe else [sys.executable, "-m", "napari_interfaces"]


def _gui_unavailable() -> str | None:
    """Why GUI tests cannot run here (a plain wheel install has no Qt binding), or None."""
    import importlib.util

    try:
        import qtpy.QtWidgets  # noqa: F401
    except Exception:  # qtpy raises its own error without a binding
        return 'needs a Qt binding (pip install "napari-interfaces[qt]")'
    if importlib.util.find_spec("pytestqt") is None:
        return "needs pytest-qt (the testing extra)"
    return None


def pytest_collection_modifyitems(config, items):
    """Skip the ``gui`` tests, with the reason, where there is no Qt (e.g. a plain install)."""
    if not any(item.get_closest_marker("gui") for item in items):
        return
    reason = _gui_unavailable()
    if reason:
        for item in items:
            if item.get_closest_marker("gui"):
                item.add_marker(pytest.mark.skip(reason=reason))
