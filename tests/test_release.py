"""A plain ``pip install napari-interfaces`` (no extras) degrades gracefully.

pyopencl and distributed are extras (``pocl``/``opencl``, ``distributed``); without
them OpenCL discovery says how to get it and batch runs compute in this process,
with a one-line hint, instead of failing (issue 26).
"""

from __future__ import annotations

import sys

import pytest

from napari_interfaces.core.errors import InputError


def _square(x: int, exp: int) -> int:
    return x**exp


def test_local_run_without_distributed_computes_inline(monkeypatch):
    from napari_interfaces.core.runner import NO_DISTRIBUTED, run_tasks

    monkeypatch.setitem(sys.modules, "distributed", None)  # import raises ImportError
    out: list[int] = []
    info = run_tasks(_square, range(7), kwargs={"exp": 2}, on_result=out.append, workers=2)
    assert sorted(out) == [0, 1, 4, 9, 16, 25, 36]
    assert info.scheduler == NO_DISTRIBUTED and info.workers == 1 and info.tasks == 7
    assert 'pip install "napari-interfaces[distributed]"' in info.scheduler


def test_remote_scheduler_without_distributed_is_one_clear_line(monkeypatch):
    from napari_interfaces.core.runner import run_tasks

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InputError) as err:
        # inproc:// skips the TCP reachability check, so the missing package is what fails
        run_tasks(_square, [1], kwargs={"exp": 2}, on_result=print, scheduler="inproc://x")
    msg = str(err.value)
    assert msg.startswith("--scheduler inproc://x: ") and "\n" not in msg
    assert 'pip install "napari-interfaces[distributed]"' in msg


def test_opencl_discovery_without_pyopencl(monkeypatch):
    from napari_interfaces.core.opencl import list_devices

    monkeypatch.setitem(sys.modules, "pyopencl", None)
    devices, message = list_devices()
    assert devices == []
    assert "NumPy backend" in message and 'pip install "napari-interfaces[pocl]"' in message


def test_simulation_without_pyopencl_falls_back_to_numpy(monkeypatch):
    from napari_interfaces.simulate import backends

    monkeypatch.setitem(sys.modules, "pyopencl", None)
    with pytest.warns(UserWarning, match="pyopencl is not installed"):
        backend = backends.get_backend("opencl:0")
    assert isinstance(backend, backends.NumpyBackend)
