"""`napari-interfaces demo` runs every installed pipeline end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from napari_interfaces.demo import PIPELINES, available_pipelines


def test_all_pipelines_have_demos():
    # each pipeline ships its demo module; the demo must cover the whole product
    assert available_pipelines() == list(PIPELINES)


@pytest.mark.slow
def test_demo_cli_writes_results(tmp_path):
    exe = shutil.which("napari-interfaces")
    assert exe
    out = tmp_path / "results"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [exe, "demo", "--out", str(out)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "demo_summary.json").read_text())
    assert list(summary["pipelines"]) == available_pipelines()
    for name, entry in summary["pipelines"].items():
        files = entry["files"]
        assert any(f.endswith(".png") for f in files), (name, files)
        assert any(f.endswith((".tif", ".tiff")) for f in files), (name, files)
        assert entry["layers"], name
        for f in files:
            assert (out / f).stat().st_size > 0, f
    # every PNG plot has real content, not a blank canvas
    from skimage.io import imread

    for png in out.rglob("*.png"):
        img = imread(png)[..., :3].astype(float)
        assert img.std() > 5, png
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20, png
