"""The console script: --help everywhere, info, demo."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import pytest

from napari_interfaces import cli


def _all_command_paths(parser: argparse.ArgumentParser, prefix=()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_command_paths(sub, (*prefix, name))


def test_help_everywhere(capsys):
    paths = list(_all_command_paths(cli.build_parser()))
    assert ("info",) in paths and ("demo",) in paths
    for path in paths:
        with pytest.raises(SystemExit) as exc:
            cli.main([*path, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: napari-interfaces"), path


def test_console_script_is_installed():
    exe = shutil.which("napari-interfaces")
    assert exe, "console script not on PATH (pip install -e .)"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    from napari_interfaces import __version__

    assert out.stdout.strip() == f"napari-interfaces {__version__}"


def test_info_json_lists_devices_and_folders(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_INTERFACES_WEIGHTS_DIR", str(tmp_path))
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "OpenCL" in info["opencl"]["message"] or "opencl" in info["opencl"]["message"].lower()
    assert info["torch_device"] in ("cpu", "cuda")
    assert str(tmp_path) in info["weights_search_path"]
    assert info["config"]["device"] == "auto"


def test_info_without_opencl(capsys, monkeypatch):
    # No OpenCL: a clear one-line notice, not a crash.
    import napari_interfaces.core.opencl as ocl

    monkeypatch.setattr(ocl, "list_devices", lambda: ([], "no OpenCL platform found (test)"))
    assert cli.main(["info"]) == 0
    assert "OpenCL: no OpenCL platform found (test)" in capsys.readouterr().out


def test_user_errors_are_one_line(capsys, tmp_path):
    assert cli.main(["demo", "--only", "nonsense", "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-interfaces: error: unknown demo pipeline")
    assert err.count("\n") == 1
