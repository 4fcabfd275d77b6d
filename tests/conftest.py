"""Shared pytest fixtures.

GUI tests use napari's ``make_napari_viewer`` fixture (from napari's pytest
plugin) on a virtual X server (pytest-xvfb) with Mesa OpenGL; Qt's
``offscreen`` platform has no OpenGL and crashes on Image layers.
"""

from __future__ import annotations

import os
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
