"""`napari-interfaces demo` runs every installed pipeline end to end."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from napari_interfaces import demo
from napari_interfaces.core.errors import OutputExistsError, ParameterError
from napari_interfaces.demo import PIPELINES, available_pipelines


def test_all_pipelines_have_demos():
    # each pipeline ships its demo module; the demo must cover the whole product
    assert available_pipelines() == list(PIPELINES)


@pytest.fixture
def fake_pipeline(monkeypatch):
    """A one-file demo pipeline ``fake`` that fails when ``module.fail`` is set."""
    import sys
    import types

    module = types.ModuleType("napari_interfaces_fake_demo")
    module.fail = False
    module.calls = 0

    def run_demo(out_dir, progress=None):
        module.calls += 1
        (out_dir / f"run{module.calls}.txt").write_text("x")
        if module.fail:
            raise RuntimeError("demo crashed")
        return [(np.zeros((2, 2)), {"name": "fake"}, "image")]

    module.run_demo = run_demo
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(demo, "PIPELINES", {"fake": (module.__name__, "a fake pipeline")})
    return module


def test_demo_refuses_existing_results_without_overwrite(tmp_path, fake_pipeline):
    demo.run_demo(tmp_path, ["fake"])
    assert (tmp_path / "fake" / "run1.txt").is_file()
    with pytest.raises(OutputExistsError, match="pass overwrite") as err:
        demo.run_demo(tmp_path, ["fake"])
    assert "pass --overwrite" in err.value.spelled(lambda f: "--" + f)  # as the CLI says it
    assert fake_pipeline.calls == 1  # refused before running
    demo.run_demo(tmp_path, ["fake"], overwrite=True)
    # the folder is replaced as a whole: no stale file from the first run
    assert sorted(p.name for p in (tmp_path / "fake").iterdir()) == ["run2.txt"]
    summary = json.loads((tmp_path / "demo_summary.json").read_text())
    assert summary["pipelines"]["fake"]["files"] == ["fake/run2.txt"]


def test_failed_demo_keeps_previous_results(tmp_path, fake_pipeline):
    demo.run_demo(tmp_path, ["fake"])
    fake_pipeline.fail = True
    with pytest.raises(RuntimeError):
        demo.run_demo(tmp_path, ["fake"], overwrite=True)
    assert sorted(p.name for p in (tmp_path / "fake").iterdir()) == ["run1.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_summary.json", "fake"]


def test_demo_parameters_checked_first(tmp_path):
    with pytest.raises(ParameterError, match="only: unknown"):
        demo.check_demo(tmp_path / "new", ["nonsense"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="out: .* is a file"):
        demo.check_demo(tmp_path / "file")
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_demo_cli_writes_results(tmp_path, cli_cmd):
    out = tmp_path / "results"
    # the venv's bin is not on PATH when the README's test command runs
    env = dict(os.environ, OMP_NUM_THREADS="2", PATH="/usr/bin:/bin")
    proc = subprocess.run(
        [*cli_cmd, "demo", "--out", str(out)], capture_output=True, text=True, env=env, timeout=600
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
