"""Progress/cancel, configuration and weights loading."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_interfaces.core import config, weights
from napari_interfaces.core.geometry import Grid
from napari_interfaces.core.progress import Cancelled, Progress, as_progress


def test_progress_reports_and_cancels():
    seen = []
    p = Progress(callback=lambda d, t, m: seen.append((d, t, m)))
    p.start(3, "stage")
    p.advance()
    p.advance(description="half")
    assert seen[-1] == (2, 3, "half")
    p.cancel()
    with pytest.raises(Cancelled):
        p.advance()
    assert p.cancelled


def test_progress_iterate_stops_when_cancelled():
    ev = threading.Event()
    p = Progress(cancel_event=ev)
    done = []
    with pytest.raises(Cancelled):
        for i in p.iterate(range(10), description="loop"):
            done.append(i)
            if i == 3:
                ev.set()
    assert done == [0, 1, 2, 3]


def test_as_progress_gives_silent_default():
    p = as_progress(None)
    p.start(None)
    p.advance(5)
    assert p.done == 5 and p.total is None


def test_config_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_INTERFACES_CONFIG_DIR", str(tmp_path))
    assert config.load_config()["device"] == "auto"
    (tmp_path / "config.yaml").write_text("device: numpy\nweights_dir: /w\n")
    assert config.get("device") == "numpy"
    monkeypatch.setenv("NAPARI_INTERFACES_DEVICE", "opencl:0")
    assert config.get("device") == "opencl:0"
    assert config.get("weights_dir") == "/w"


def test_config_rejects_bad_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_INTERFACES_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text("- a list\n- not a mapping\n")
    with pytest.raises(ValueError, match="config.yaml"):
        config.load_config()


def test_cache_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_INTERFACES_CACHE_DIR", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c"
    assert (tmp_path / "c").is_dir()


def test_weights_checksum_and_safe_load(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "w.pt"
    torch.save({"a": torch.arange(3.0)}, path)
    digest = weights.sha256(path)
    state = weights.load_torch_state(path, digest)
    assert torch.equal(state["a"], torch.arange(3.0))
    with pytest.raises(weights.WeightsError, match="checksum mismatch"):
        weights.load_torch_state(path, "0" * 64)
    path.write_bytes(b"not a torch file")
    with pytest.raises(weights.WeightsError, match="not a readable torch weights file"):
        weights.load_torch_state(path)


def test_weights_refuse_pickled_objects(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "evil.pt"
    torch.save({"obj": threading.Lock}, path)  # a class, not tensors: needs full unpickling
    with pytest.raises(weights.WeightsError):
        weights.load_torch_state(path)


def test_find_weights_message_lists_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_INTERFACES_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(weights.WeightsError, match="pip install something"):
        weights.find_weights("missing.pt", "Get it with: pip install something")
    (tmp_path / "there.pt").write_bytes(b"x")
    assert weights.find_weights("there.pt") == tmp_path / "there.pt"


def test_grid_layer_kwargs():
    g = Grid(origin=(0.0, -5.0, 2.5), spacing=(1.5, 1.0, 1.0))
    kw = g.layer_kwargs()
    assert kw["scale"] == (1.5, 1.0, 1.0)
    assert kw["translate"] == (0.0, -5.0, 2.5)
    assert Grid.from_dict(g.to_dict()) == g
    with pytest.raises(ValueError):
        Grid(origin=(0.0,), spacing=(np.nan,), axes="x")
