"""core.errors, core.outputs, core.limits, core.params, core.config: the safety helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from napari_interfaces.core import config, limits, params
from napari_interfaces.core.errors import (
    InputError,
    OutputExistsError,
    ParameterError,
    SizeLimitError,
)
from napari_interfaces.core.outputs import (
    TMP_MARK,
    atomic_dir,
    atomic_file,
    check_output,
    cleanup_stale,
    same_file,
)


# ---------------------------------------------------------------- errors
def test_error_hierarchy():
    for cls in (ParameterError, OutputExistsError, SizeLimitError):
        assert issubclass(cls, InputError)
    assert issubclass(InputError, ValueError)
    err = ParameterError("--tile", "must be positive, got 0")
    assert str(err) == "--tile: must be positive, got 0" and err.name == "--tile"
    from napari_interfaces.core.weights import WeightsError
    from napari_interfaces.io.apt_errors import AptFormatError

    assert issubclass(WeightsError, InputError) and issubclass(WeightsError, RuntimeError)
    assert issubclass(AptFormatError, InputError)


# ---------------------------------------------------------------- outputs
def test_check_output_refuses_inputs_even_with_overwrite(tmp_path):
    inp = tmp_path / "in.tif"
    inp.write_bytes(b"data")
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="one of the inputs"):
            check_output(inp, [inp], overwrite=overwrite)
        # the same file through another spelling and through a link
        with pytest.raises(OutputExistsError):
            check_output(tmp_path / "." / "in.tif", [inp], overwrite=overwrite)
        link = tmp_path / "link.tif"
        if not link.exists():
            link.symlink_to(inp)
        with pytest.raises(OutputExistsError):
            check_output(link, [inp], overwrite=overwrite)
    # a folder that contains an input (atomic_dir would replace it)
    with pytest.raises(OutputExistsError, match="contains the input"):
        check_output(tmp_path, [inp], overwrite=True)
    assert inp.read_bytes() == b"data"


def test_check_output_existing_needs_overwrite(tmp_path):
    out = tmp_path / "out.tif"
    assert check_output(out) == out  # new: fine
    out.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match=r"--labels .*file exists; pass --overwrite"):
        check_output(out, name="--labels")
    assert check_output(out, overwrite=True) == out
    (tmp_path / "dir").mkdir()
    with pytest.raises(OutputExistsError, match="folder exists"):
        check_output(tmp_path / "dir")


def test_same_file(tmp_path):
    a = tmp_path / "a"
    a.write_text("x")
    assert same_file(a, tmp_path / "sub" / ".." / "a")
    assert not same_file(a, tmp_path / "b")
    assert same_file(tmp_path / "missing", tmp_path / "missing")


def test_atomic_file_success_and_failure(tmp_path):
    out = tmp_path / "sub" / "result.tif"
    with atomic_file(out) as tmp:
        assert tmp.parent == out.parent and tmp.suffix == ".tif" and TMP_MARK in tmp.name
        assert not out.exists()  # nothing under the final name while writing
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    with pytest.raises(RuntimeError), atomic_file(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert out.read_bytes() == b"new"  # the old result survives
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.tif"]  # no temp left
    with pytest.raises(FileNotFoundError, match="produced no file"), atomic_file(out):
        pass
    assert out.read_bytes() == b"new"


def test_atomic_dir_replaces_whole_folder(tmp_path):
    out = tmp_path / "result"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "stale.txt").write_text("1")
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # no stale file survives
    assert (out / "a.txt").read_text() == "2"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("3")
        raise RuntimeError("killed")
    assert (out / "a.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]


def _stale(folder: Path, name: str, pid: int, host: str | None = None, cmd: str = "segment"):
    from napari_interfaces.core.outputs import _host

    return folder / f".{name}.{TMP_MARK}-{cmd}-{host or _host()}-{pid}-abcd1234"


#: A process id above Linux's largest pid_max: never a live process.
DEAD_PID = 4194305


def test_cleanup_stale_removes_only_our_dead_runs(tmp_path):
    (_stale(tmp_path, "x.tif", DEAD_PID)).write_text("half")  # ours, process gone
    _stale(tmp_path, "res", DEAD_PID).mkdir()
    alive = _stale(tmp_path, "live", os.getppid())  # a running process's folder
    alive.mkdir()
    other_host = _stale(tmp_path, "far", DEAD_PID, host="otherhost")  # another machine's
    other_host.mkdir()
    legacy = tmp_path / f".old.{TMP_MARK}-1234abcd"  # no owner in the name: left alone
    legacy.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    link = _stale(tmp_path, "lnk", DEAD_PID)
    link.symlink_to(victim)  # a planted link is unlinked, never followed
    (tmp_path / "keep.tif").write_text("x")
    removed = cleanup_stale(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, other_host.name, legacy.name, "keep.tif", "victim"]
    )
    assert (victim / "keep.txt").read_text() == "keep"
    assert cleanup_stale(tmp_path / "missing") == []


def test_temp_names_say_who_owns_them_and_are_unpredictable(tmp_path):
    from napari_interfaces.core.outputs import _TMP_RE, _host

    names = []
    for _ in range(2):
        with atomic_file(tmp_path / "a.tif") as tmp:
            m = _TMP_RE.search(tmp.name)
            assert m and m["host"] == _host() and int(m["pid"]) == os.getpid()
            assert tmp.is_file() and (tmp.stat().st_mode & 0o077) == 0  # made by mkstemp
            names.append(tmp.name)
            tmp.write_bytes(b"x")
    assert names[0] != names[1]


def test_a_symlink_at_the_output_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.tif").symlink_to(victim)
    with atomic_file(out / "result.tif") as tmp:
        tmp.write_bytes(b"new")
    assert victim.read_text() == "precious"
    assert not (out / "result.tif").is_symlink() and (out / "result.tif").read_bytes() == b"new"
    # a folder result over a link to a folder: the link goes, the folder it names stays
    (out / "res").symlink_to(tmp_path)
    with atomic_dir(out / "res") as tmp:
        (tmp / "a.txt").write_text("1")
    assert victim.read_text() == "precious" and (out / "res" / "a.txt").is_file()
    assert not (out / "res").is_symlink()


def test_safe_names_and_output_paths(tmp_path):
    from napari_interfaces.core.outputs import output_path, safe_name, safe_names

    for hostile in ("x/../../../victim", "../victim", "..", "a\\b", "a\x00b", "\n", "-rf"):
        name = safe_name(hostile)
        assert "/" not in name and "\\" not in name and "\x00" not in name
        assert not name.startswith(".") and not name.startswith("-") and name
        assert output_path(tmp_path, name).parent == tmp_path
    assert safe_name("Al2O3+") == "Al2O3+" and safe_name("Name:x/../v") == "Name_x_.._v"
    assert len(safe_name("a" * 1000)) <= 120
    assert safe_names(["Al", "Al", "al"]) == ["Al", "Al_2", "al_3"]
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(InputError, match="not a plain file name"):
            output_path(tmp_path, bad)
    (tmp_path / "esc").symlink_to("/tmp")
    with pytest.raises(InputError, match="outside"):
        output_path(tmp_path, "esc")


def test_voxelize_counts_never_writes_outside_out(tmp_path, capsys):
    """Issue 22.1: an ion named with ``/../`` in a range file stays inside --out."""
    import numpy as np

    from napari_interfaces.cli import main
    from napari_interfaces.io.apt_pointcloud import write_pos

    rng = np.random.default_rng(0)
    n = 2000
    xyz = rng.uniform(0, 5, (n, 3)).astype(np.float32)
    m = np.where(rng.random(n) < 0.5, 27.0, 13.5).astype(np.float32)
    from napari_interfaces.apt.pointcloud import PointCloud

    write_pos(tmp_path / "d.pos", PointCloud(xyz, m))
    (tmp_path / "d.rrng").write_text(
        "[Ions]\nNumber=2\nIon1=Al\nIon2=Name:x/../../../victim\n[Ranges]\nNumber=2\n"
        "Range1=26.5 27.5 Vol:0.01 Al:1 Color:FF0000\n"
        "Range2=13.0 14.0 Vol:0.01 Name:x/../../../victim Color:00FF00\n"
    )
    victim = tmp_path / "victim_counts.tif"
    victim.write_text("precious")
    out = tmp_path / "a" / "b" / "c" / "out"
    argv = ["apt", "voxelize", str(tmp_path / "d.pos"), "--out", str(out), "--counts"]
    rc = main([*argv, "--voxel", "1"])
    err = capsys.readouterr().err
    assert victim.read_text() == "precious"
    assert not list(tmp_path.glob("a/*victim*")) and not list(tmp_path.glob("a/b/*victim*"))
    if rc == 0:
        assert all(p.parent == out for p in out.rglob("*"))
        assert not [p for p in out.iterdir() if p.name.startswith(".")]
    else:
        assert rc == 2 and "\n" not in err.strip()


def test_signal_removes_the_runs_temporaries(tmp_path):
    """Issue 22.10: SIGTERM/SIGINT during a write leave no temporary behind."""
    import signal
    import time

    code = (
        "import sys, time, pathlib\n"
        "from napari_interfaces.core.outputs import atomic_dir, atomic_file\n"
        "out = pathlib.Path(sys.argv[1])\n"
        "with atomic_dir(out / 'res') as d, atomic_file(out / 'f.tif') as f:\n"
        "    (d / 'a.txt').write_text('x')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        assert len(list(tmp_path.iterdir())) == 2
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert proc.returncode != 0
        time.sleep(0.05)
        assert list(tmp_path.iterdir()) == [], sig


def test_atomic_dir_refuses_to_publish_a_folder_another_process_removed(tmp_path):
    import shutil

    from napari_interfaces.core.outputs import WriteError, verify_files

    out = tmp_path / "res"
    with pytest.raises(WriteError, match="removed or replaced"), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
        shutil.rmtree(tmp)  # what a careless cleanup of another run did
        tmp.mkdir()
        (tmp / "b.txt").write_text("1")
    assert not out.exists()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.tif").write_text("1")
    verify_files(tmp_path / "x", ["a.tif"])
    with pytest.raises(WriteError, match="1 file.*missing.*b.tif"):
        verify_files(tmp_path / "x", ["a.tif", "b.tif"])


def test_write_failures_name_the_file(tmp_path, monkeypatch):
    """Issue 22.11: a full disk or a file-size limit is one line naming the file."""
    import errno

    from napari_interfaces.core.outputs import WriteError

    out = tmp_path / "big.bin"
    with pytest.raises(WriteError, match=r"big.bin: cannot write: No space left"):
        with atomic_file(out) as tmp, open(tmp, "wb"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []
    code = (
        "import resource, sys, pathlib\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from napari_interfaces.core.outputs import atomic_file, WriteError\n"
        "try:\n"
        "    with atomic_file(pathlib.Path(sys.argv[1]) / 'big.bin') as t:\n"
        "        t.write_bytes(b'x' * 100000)\n"
        "except WriteError as e:\n"
        "    print(e)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert "big.bin: cannot write: File too large" in res.stdout, res.stderr
    assert list(tmp_path.iterdir()) == []
    # checked before any work: a path under a file, a read-only folder, a full disk
    (tmp_path / "f").write_text("x")
    with pytest.raises(WriteError, match="not a folder"):
        check_output(tmp_path / "f" / "out.tif")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(WriteError, match="--out .*cannot write in"):
        check_output(tmp_path / "new" / "out.tif")


# ---------------------------------------------------------------- limits
def test_check_pixels_and_bytes(monkeypatch):
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_PIXELS", "1000000")
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_BYTES", "1e6")
    assert limits.max_pixels() == 1_000_000 and limits.max_bytes() == 1_000_000
    assert limits.check_pixels((1000, 1000), "a.tif") == 1_000_000
    with pytest.raises(SizeLimitError) as exc:
        limits.check_pixels((40000, 40000), "bomb.tif")
    msg = str(exc.value)
    assert "bomb.tif" in msg and "40000x40000" in msg and "1,600,000,000" in msg
    assert "1,000,000" in msg and "NAPARI_INTERFACES_MAX_PIXELS" in msg and "\n" not in msg
    with pytest.raises(SizeLimitError, match="negative"):
        limits.check_pixels((-1, 5), "x")
    limits.check_bytes(1e6, "grid")
    with pytest.raises(SizeLimitError, match=r"grid: needs about 1\.9 MiB.*MAX_BYTES"):
        limits.check_bytes(2e6, "grid")
    with pytest.raises(SizeLimitError):
        limits.check_bytes(float("inf"), "grid")
    with pytest.raises(SizeLimitError, match="needs about"):
        limits.check_bytes(float("nan"), "grid")


def test_limit_defaults_and_bad_settings(monkeypatch):
    monkeypatch.delenv("NAPARI_INTERFACES_MAX_PIXELS", raising=False)
    monkeypatch.delenv("NAPARI_INTERFACES_MAX_BYTES", raising=False)
    assert limits.max_bytes() == limits.available_memory() // 2 > 0
    assert 0 < limits.max_pixels() <= 2**31
    for bad in ("abc", "-5", "0", "inf", "nan"):
        monkeypatch.setenv("NAPARI_INTERFACES_MAX_PIXELS", bad)
        with pytest.raises(SizeLimitError, match="NAPARI_INTERFACES_MAX_PIXELS"):
            limits.max_pixels()


# ---------------------------------------------------------------- params
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: params.positive("--tile", 0, integer=True), "--tile: must be a positive integer"),
        (lambda: params.positive("--tile", 1.5, integer=True), "--tile: must be an integer"),
        (lambda: params.positive("--lr", -1e-3), "--lr: must be positive"),
        (lambda: params.positive("--lr", float("nan")), "--lr: must be finite"),
        (lambda: params.positive("--lr", "inf"), "--lr: must be finite"),
        (lambda: params.positive("--n", 10**400, integer=True), "--n: must be finite"),
        (lambda: params.positive("--n", True, integer=True), "--n: must be an integer"),
        (lambda: params.positive("--n", "abc"), "--n: must be a number"),
        (lambda: params.positive("--n", None), "--n: must be a number"),
        (lambda: params.positive("--sampling", 5, maximum=1), "--sampling: must be at most 1"),
        (lambda: params.non_negative("--median", -1, integer=True), "--median: must be zero"),
        (lambda: params.fraction("--val-fraction", 1.5), r"--val-fraction: must be in \[0, 1\)"),
        (lambda: params.fraction("--val-fraction", 1.0), r"must be in \[0, 1\)"),
        (lambda: params.in_range("--q", 0, 0, 1, lo_open=True), r"must be in \(0, 1\]"),
        (lambda: params.one_of("--method", "x", ("hed", "iso")), "--method: must be one of hed"),
        (lambda: params.one_of("--method", ["x"], {"hed"}), "--method: must be one of hed"),
    ],
)
def test_params_reject_with_the_name(call, match):
    with pytest.raises(ParameterError, match=match) as exc:
        call()
    assert "\n" not in str(exc.value)


def test_params_accept_and_convert():
    assert params.positive("--tile", "256", integer=True) == 256
    assert isinstance(params.positive("--tile", 256.0, integer=True), int)
    assert params.positive("--lr", "2e-3") == pytest.approx(2e-3)
    assert params.non_negative("--median", 0, integer=True) == 0
    assert params.fraction("--val-fraction", 0.0) == 0.0
    assert params.fraction("--f", 1.0, allow_one=True) == 1.0
    assert params.in_range("--q", 1, 0, 1) == 1
    assert params.one_of("--method", "iso", ("hed", "iso")) == "iso"


# ---------------------------------------------------------------- config
def test_bad_config_file_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_INTERFACES_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text("device: [unclosed\n")
    with pytest.raises(InputError, match="config.yaml: not valid YAML") as exc:
        config.load_config()
    assert "\n" not in str(exc.value)
    (tmp_path / "config.yaml").write_text("- a list\n")
    with pytest.raises(InputError, match="expected a mapping"):
        config.load_config()
    (tmp_path / "config.yaml").write_text("device: numpy\n")
    assert config.get("device") == "numpy"
    monkeypatch.setenv("NAPARI_INTERFACES_DEVICE", "torch")
    assert config.get("device") == "torch"  # the environment wins


def test_importing_the_package_leaves_numba_settings_alone(tmp_path):
    """Issue 20.5: only the CLI process points numba's cache at the user cache."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NAPARI_INTERFACES_CACHE_DIR"] = str(tmp_path)
    code = (
        "import os, sys, napari_interfaces, napari_interfaces.io, napari_interfaces.apt;"
        "assert os.environ.get('NUMBA_CACHE_DIR', '') == sys.argv[1], 'changed on import';"
        "from napari_interfaces.core.config import configure_numba_cache;"
        "configure_numba_cache(); print(os.environ['NUMBA_CACHE_DIR'])"
    )
    res = subprocess.run([sys.executable, "-c", code, ""], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-800:]
    out = res.stdout.split()
    assert out == [str(tmp_path / "numba")]
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")  # a user's own setting wins
    res = subprocess.run(
        [sys.executable, "-c", code, env["NUMBA_CACHE_DIR"]],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-800:]
    out = res.stdout.split()
    assert out == [str(tmp_path / "mine")]


def test_numba_cache_write_failure_is_not_fatal(tmp_path):
    """Issue 22.11: under ``ulimit -f`` a kernel still runs (its cache is not written)."""
    pytest.importorskip("numba")
    (tmp_path / "kern.py").write_text(
        "import numba\n@numba.njit(cache=True)\ndef f(n):\n"
        "    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
    )
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))\n"
        "from napari_interfaces.core.config import configure_numba_cache\n"
        "configure_numba_cache()\n"
        "import kern\nprint(kern.f(10))\n"
    )
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]),
    )
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and res.stdout.strip() == "45", res.stderr[-500:]
    assert "cache not written" in res.stderr


def test_sysinfo_collect_is_json(monkeypatch):
    import json

    from napari_interfaces.core.sysinfo import collect, format_lines

    info = collect()
    json.dumps(info)
    lines = format_lines(info)
    assert lines[0].startswith("napari-interfaces ")
    assert any(line.startswith("OpenCL: ") for line in lines)


def test_atomic_dir_restores_the_old_result_when_the_swap_fails(tmp_path, monkeypatch):
    import napari_interfaces.core.outputs as outputs

    out = tmp_path / "result"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # moving the new folder into place
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", flaky)
    with (
        pytest.raises(outputs.WriteError, match="result: cannot write: disk full"),
        atomic_dir(out) as tmp,
    ):
        (tmp / "a.txt").write_text("new")
    monkeypatch.setattr(outputs.os, "replace", real)
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]


# ---------------------------------------------------------------- model cards
CARD_KEYS = ("data", "training", "metrics", "licence")


def _card(pt: Path) -> dict:
    import json

    for name in (f"{pt.stem}.card.json", f"{pt.stem}.json"):
        if (pt.parent / name).is_file():
            return json.loads((pt.parent / name).read_text())
    return {}


def _weights_params():
    from napari_interfaces import weights

    folder = Path(weights.__file__).parent
    owners: dict[str, str] = {}  # stem -> owner, for a card still incomplete (xfail)
    for pt in sorted(folder.glob("*.pt")):
        marks = []
        if pt.stem in owners:
            marks = [
                pytest.mark.xfail(
                    reason=f"{owners[pt.stem]}: card lacks some of {CARD_KEYS}", strict=False
                )
            ]
        yield pytest.param(pt, marks=marks, id=pt.stem)


@pytest.mark.parametrize("pt", list(_weights_params()))
def test_every_shipped_weights_file_has_a_model_card(pt):
    from napari_interfaces.core.weights import sha256

    card = _card(pt)
    assert card, f"{pt.name}: no model card ({pt.stem}.card.json or {pt.stem}.json)"
    training = card.get("training") or {}
    has = {
        "data": bool(card.get("data") or training.get("data")),
        "training": "command" in training,
        "metrics": bool(card.get("metrics")),
        "licence": bool(card.get("licence") or card.get("license")),
    }
    missing = [k for k in CARD_KEYS if not has[k]]
    assert not missing, f"{pt.name}: model card lacks {missing} (training: the command)"
    assert card["sha256"] == sha256(pt)
