"""The console script: --help everywhere, info, demo."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from conftest import console_script
from napari_interfaces import cli
from napari_interfaces.core.errors import InputError


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


def test_console_script_is_installed(monkeypatch):
    # found beside sys.executable, not on PATH: the README runs .venv/bin/python
    # -m pytest without activating the venv (issue 11.1)
    exe = console_script()
    assert exe, f"console script not installed beside {sys.executable} (pip install -e .)"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    outs = [
        subprocess.run([*cmd, "--version"], capture_output=True, text=True, check=True).stdout
        for cmd in ([str(exe)], [sys.executable, "-m", "napari_interfaces"])
    ]
    # both entry points report the installed distribution's version
    assert outs[0] == outs[1]
    name, version = outs[0].split()
    assert name == "napari-interfaces" and version[0].isdigit()


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


def test_device_choices_name_every_opencl_device_and_survive_a_broken_runtime(monkeypatch):
    """The HRTEM dock's device list comes from the engine: each entry is a device that
    get_backend accepts; a broken OpenCL runtime lists the CPU choices, no exception."""
    import napari_interfaces.core.opencl as ocl
    from napari_interfaces.simulate.backends import device_choices, resolve_device

    devices, _ = ocl.list_devices()
    got = device_choices()
    assert got[:3] == ["cpu", "numpy", "auto"]
    assert [c for c in got if c.startswith("opencl:")] == [f"opencl:{d.index}" for d in devices]
    assert all(resolve_device(c) for c in got)

    def broken():
        raise RuntimeError("clGetPlatformIDs failed (test)")

    monkeypatch.setattr(ocl, "list_devices", broken)
    assert [c for c in device_choices() if c.startswith("opencl")] == []


def test_user_errors_are_one_line(capsys, tmp_path):
    assert cli.main(["demo", "--only", "nonsense", "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-interfaces: error: --only: unknown demo pipeline")
    assert err.count("\n") == 1
    assert not (tmp_path / "never").exists()  # validated before anything is written


def _parser_with(monkeypatch, func):
    """``cli.main`` whose ``info`` command runs ``func``."""
    real = cli.build_parser

    def build():
        parser = real()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices["info"].set_defaults(func=func)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)


@pytest.mark.parametrize(
    "exc",
    [
        InputError("bad.pos: offset 12: record size 16 does not divide 13 bytes"),
        FileNotFoundError(2, "No such file or directory", "missing.tif"),
        PermissionError(13, "Permission denied", "locked/x"),
        IsADirectoryError(21, "Is a directory", "somewhere"),
        InputError("first line\nsecond line"),
    ],
)
def test_input_and_os_errors_are_one_line_exit_2(monkeypatch, capsys, exc):
    def func(args):
        raise exc

    _parser_with(monkeypatch, func)
    assert cli.main(["info"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-interfaces: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("exc", [ValueError("a bug"), ZeroDivisionError(), KeyError("k")])
def test_other_exceptions_are_bugs_with_traceback(monkeypatch, exc):
    # only the project's own InputError (and OSError) is a user error; a bare
    # ValueError is a bug and must not be hidden behind a one-line message
    def func(args):
        raise exc

    _parser_with(monkeypatch, func)
    with pytest.raises(type(exc)):
        cli.main(["info"])


def test_bug_exits_1_with_traceback():
    # a bug in a subprocess: Python's own traceback and exit status 1
    code = (
        "import sys; from napari_interfaces import cli;"
        "cli.COMMAND_MODULES = ('info', 'no_such_command_module');"
        "sys.exit(cli.main(['info']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "no_such_command_module" in proc.stderr


def test_missing_command_module_is_not_hidden(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "no_such_command"))
    with pytest.raises(ModuleNotFoundError, match="no_such_command"):
        cli.build_parser()


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["info", "--no-such-option"])
    assert exc.value.code == 2


def test_every_command_module_is_registered():
    # every command module in _cli is listed (a command cannot be forgotten; _private
    # modules such as _spec are helpers), and
    # every listed module exists (none silently vanishes)
    from pathlib import Path

    import napari_interfaces._cli as pkg

    found = {p.stem for p in Path(pkg.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    assert found == set(cli.COMMAND_MODULES)


def test_python_dash_m():
    proc = subprocess.run(
        [sys.executable, "-m", "napari_interfaces", "info", "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["torch_device"] in ("cpu", "cuda")
