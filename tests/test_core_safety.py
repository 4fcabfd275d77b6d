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
    with pytest.raises(OutputExistsError, match=r"^labels .*file exists; pass overwrite") as err:
        check_output(out, name="labels")
    # the engine names parameters by field; the CLI spells them as flags
    flags = err.value.spelled(lambda f: "--" + f)
    assert flags.startswith("--labels ") and "pass --overwrite to replace it" in flags
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
    with pytest.raises(WriteError, match="^out .*cannot write in"):
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


# ---------------------------------------------------------------- issue 22 regressions
def _cloud(n: int = 500):
    import numpy as np

    from napari_interfaces.apt.pointcloud import PointCloud

    rng = np.random.default_rng(0)
    return PointCloud(rng.uniform(0, 5, (n, 3)).astype("f4"), rng.uniform(1, 60, n).astype("f4"))


def test_apt_duplicate_sections_and_two_component_mass(tmp_path):
    import numpy as np

    from napari_interfaces.io.apt_errors import AptFormatError
    from napari_interfaces.io.apt_pointcloud import _sec_header, read_apt, write_apt

    cloud = _cloud()
    p = write_apt(tmp_path / "a.apt", cloud)
    n = cloud.n_ions
    mass = _sec_header("Mass", 3, 32, 4, "Da", n) + np.full(n, 99.0, "<f4").tobytes()
    (tmp_path / "dup.apt").write_bytes(p.read_bytes() + mass)
    with pytest.raises(AptFormatError, match=r"dup.apt.*duplicate section 'Mass'"):
        read_apt(tmp_path / "dup.apt")
    raw = p.read_bytes()
    cut = raw.index(_sec_header("Mass", 3, 32, 4, "Da", n))
    two = _sec_header("Mass", 3, 32, 8, "Da", n) + np.ones((n, 2), "<f4").tobytes()
    (tmp_path / "two.apt").write_bytes(raw[:cut] + two)
    with pytest.raises(AptFormatError, match="Mass section has 2 components"):
        read_apt(tmp_path / "two.apt")


def test_huge_element_counts_are_an_error_not_nan_json(tmp_path, capsys):
    from napari_interfaces.cli import main
    from napari_interfaces.io.apt_pointcloud import write_pos

    write_pos(tmp_path / "d.pos", _cloud())
    (tmp_path / "d.rrng").write_text(
        "[Ions]\nNumber=1\nIon1=Al\n[Ranges]\nNumber=1\n"
        "Range1=1.0 60.0 Vol:0.01 Al:1e308 Color:FF0000\n"
    )
    rc = main(
        ["apt", "info", str(tmp_path / "d.pos"), "--ranges", str(tmp_path / "d.rrng"), "--json"]
    )
    out, err = capsys.readouterr()
    assert rc == 2 and "NaN" not in out and "d.rrng" in err and "not a finite number" in err


def test_env_integers_name_the_variable(monkeypatch):
    from napari_interfaces.apt.pointcloud import n_threads
    from napari_interfaces.core.config import env_int

    monkeypatch.setenv("NAPARI_INTERFACES_THREADS", "abc")
    with pytest.raises(InputError, match="NAPARI_INTERFACES_THREADS='abc'"):
        n_threads()
    monkeypatch.setenv("NAPARI_INTERFACES_FFT_WORKERS", "0")
    with pytest.raises(InputError, match="NAPARI_INTERFACES_FFT_WORKERS"):
        env_int("NAPARI_INTERFACES_FFT_WORKERS", 2)
    monkeypatch.setenv("NAPARI_INTERFACES_THREADS", "3")
    assert n_threads() == 3
    code = "import napari_interfaces.simulate.backends"
    env = dict(os.environ, NAPARI_INTERFACES_FFT_WORKERS="abc")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "NAPARI_INTERFACES_FFT_WORKERS='abc'" in res.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["simulate", "structure", "--element", "Xx"], "--element: 'Xx' is not a chemical"),
        (["apt", "synth", "--period", "1e-6", "--size", "10", "10", "10"], "--period"),
    ],
)
def test_bad_parameters_are_one_line(argv, match, tmp_path, capsys):
    from napari_interfaces.cli import main

    assert main([*argv, "--out", str(tmp_path / "o.xyz")]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1
    from napari_interfaces.apt.synthetic import synthesize

    with pytest.raises(ParameterError, match="period_nm"):
        synthesize("layered", size_nm=(10, 10, 10), period_nm=1e-6)


def test_database_spec_errors(tmp_path, capsys):
    from napari_interfaces.cli import main

    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    argv = ["--n", "1", "--scheduler", "inline", "--quiet", "--out"]
    assert main(["simulate", "database", str(deep), *argv, str(tmp_path / "d.zarr")]) == 2
    assert "nested too deeply" in capsys.readouterr().err
    from napari_interfaces.simulate import spec as spec_mod

    example = Path(spec_mod.__file__).parent / "examples" / "tiny_synthetic.yaml"
    text = example.read_text().replace("radius: {uniform: [5, 9]}", "radius: {gauss: [5, 9]}")
    assert "gauss" in text
    (tmp_path / "u.yaml").write_text(text)
    assert (
        main(["simulate", "database", str(tmp_path / "u.yaml"), *argv, str(tmp_path / "u.zarr")])
        == 2
    )
    err = capsys.readouterr().err
    assert "parameters.particle.radius: {gauss: [5, 9]}" in err and "unknown distribution" in err


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    from napari_interfaces.simulate.database import generate_database
    from napari_interfaces.simulate.spec import load_spec

    spec = load_spec("tiny_synthetic").to_dict()
    spec["output"]["crop"] = 32
    out = tmp_path_factory.mktemp("db") / "db.zarr"
    generate_database(spec, out, n=3, scheduler="inline")
    return out


def _copy_db(small_db, tmp_path):
    import shutil

    dst = tmp_path / "db.zarr"
    shutil.copytree(small_db, dst)
    return dst


def test_tampered_database_stores(small_db, tmp_path):
    import json

    import numpy as np

    from napari_interfaces.simulate.database import completed_indices, read_sample

    for key, value, match in (("n", "abc", "'n'"), ("spec", ["a"], "'spec'"),
                              ("pixel_size", -0.5, "'pixel_size'")):  # fmt: skip
        db = _copy_db(small_db, tmp_path / key)
        meta = json.loads((db / "zarr.json").read_text())
        meta["attributes"][key] = value
        (db / "zarr.json").write_text(json.dumps(meta))
        with pytest.raises(InputError, match=match):
            completed_indices(db)
    db = _copy_db(small_db, tmp_path / "chunks")
    assert completed_indices(db) == [0, 1, 2]
    (db / "image" / "c" / "1" / "0" / "0").unlink()  # a missing chunk reads as zeros in zarr
    with pytest.raises(InputError, match="1 of 3 completed samples have no image chunk"):
        completed_indices(db)
    db = _copy_db(small_db, tmp_path / "garbage")
    (db / "image" / "c" / "2" / "0" / "0").write_bytes(b"garbage")
    with pytest.raises(InputError, match="sample 2: image chunk is damaged"):
        read_sample(db, 2)
    import zarr

    db = _copy_db(small_db, tmp_path / "labels")
    zarr.open_group(str(db), mode="r+")["labels"][0] = np.full((32, 32), 7, np.uint8)
    with pytest.raises(InputError, match="label value 7 is outside the 2 classes"):
        read_sample(db, 0)


def test_evaluate_refuses_missing_image_chunks(small_db, tmp_path, capsys):
    """Issue 22.5: all image chunks deleted gave F1 0.40 'over 6 samples'."""
    import shutil

    from napari_interfaces.cli import main
    from napari_interfaces.segment.models import save_model
    from napari_interfaces.segment.unet import UNet, UNetConfig

    db = _copy_db(small_db, tmp_path)
    shutil.rmtree(db / "image" / "c")
    save_model(UNet(UNetConfig(width=4, blocks=(1, 1))), tmp_path / "m.pt", {"pixel_size": 0.4})
    rc = main(["evaluate", "--data", str(db), "--model", str(tmp_path / "m.pt")])
    out, err = capsys.readouterr()
    assert rc == 2 and "F1" not in out and "no image chunk" in err


def _tiny_model(tmp_path, name="m"):
    from napari_interfaces.segment.models import save_model
    from napari_interfaces.segment.unet import UNet, UNetConfig

    return save_model(UNet(UNetConfig(width=4, blocks=(1, 1))), tmp_path / f"{name}.pt",
                      {"pixel_size": 0.5})  # fmt: skip


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("pixel_size", -0.57, "pixel_size = -0.57"),
        ("pixel_size", 0, "pixel_size = 0"),
        (("architecture", "width"), 3000, "architecture.width = 3000"),
        (("architecture", "blocks"), [200000, 2], "architecture.blocks"),
        (("architecture", "n_classes"), 3, "do not fit|classes"),
        ("classes", ["a", "b", "c"], "classes"),
    ],
)
def test_tampered_model_json(tmp_path, key, value, match):
    import json
    import time

    from napari_interfaces.core.weights import WeightsError
    from napari_interfaces.segment.models import load_model

    pt = Path(_tiny_model(tmp_path))
    js = pt.with_suffix(".json")
    meta = json.loads(js.read_text())
    if isinstance(key, tuple):
        meta[key[0]][key[1]] = value
    else:
        meta[key] = value
    js.write_text(json.dumps(meta))
    t0 = time.perf_counter()
    with pytest.raises(WeightsError, match=match):
        load_model(pt)
    assert time.perf_counter() - t0 < 10  # refused before anything big is built


def test_train_checkpoint_temp_is_unpredictable_and_resume_is_checked(tmp_path, small_db):
    """Issue 22.2 and 22.12: a link at MODEL.pt.ckpt.tmp is never written through; a
    garbage, pickled or wrong-width checkpoint is one line naming it."""
    import pickle

    import torch

    from napari_interfaces.segment.train import TrainConfig, train
    from napari_interfaces.segment.unet import UNet, UNetConfig

    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    out = tmp_path / "m.pt"
    (tmp_path / "m.pt.ckpt.tmp").symlink_to(victim)
    cfg = TrainConfig(epochs=1, width=4, crop=None, threads=1, batch_size=2)
    train(small_db, out, cfg)
    assert victim.read_bytes() == b"precious" and out.is_file()
    ckpt = tmp_path / "m.pt.ckpt"
    wrong = {"model": UNet(UNetConfig(width=8)).state_dict()}
    for content in (b"garbage", pickle.dumps({"model": 1}), None):
        if content is None:
            torch.save(wrong, ckpt)
        else:
            ckpt.write_bytes(content)
        with pytest.raises(InputError, match=r"m.pt.ckpt: not a usable training checkpoint"):
            train(small_db, tmp_path / "m.pt", cfg)


def test_cluster_model_files_are_validated(tmp_path):
    import json

    import numpy as np

    from napari_interfaces.cluster.corrections import CorrectionModel
    from napari_interfaces.cluster.pairfile import load_pair, save_pair

    nf = 4
    good = dict(extractor={"name": "fft"}, chip=32, stride=16, classes=[1, 2], border="shift",
                clahe=False, n_features=nf, extra={})  # fmt: skip
    arrays = dict(
        mean=np.zeros(nf), scale=np.ones(nf), coef=np.ones((1, nf)), intercept=np.zeros(1)
    )
    from napari_interfaces.cluster import corrections

    base = {"format": corrections.FORMAT, **good}
    save_pair(tmp_path / "ok", base, arrays)
    assert CorrectionModel.load(tmp_path / "ok").chip == 32
    for change, match in (
        ({"chip": 0}, "chip = 0"),
        ({"stride": 0}, "stride = 0"),
        ({"extractor": {"name": "evil"}}, "extractor 'evil' is unknown"),
        ({"classes": [1, 2, 3]}, "3 classes"),
    ):
        save_pair(tmp_path / "bad", {**base, **change}, arrays)
        with pytest.raises(InputError, match=match):
            CorrectionModel.load(tmp_path / "bad")
    # an npz whose header declares 8 GB in a few bytes
    import io
    import zipfile

    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        hdr, {"descr": "<f8", "fortran_order": False, "shape": (1 << 30,)}
    )
    with zipfile.ZipFile(tmp_path / "ok.npz", "a") as zf:
        zf.writestr("big.npy", b"\x93NUMPY\x01\x00" + hdr.getvalue()[8:])
    with pytest.raises(InputError, match="big.npy declares"):
        load_pair(tmp_path / "ok", corrections.FORMAT, "model")
    json.dumps(good)


def test_next_write_removes_a_killed_runs_own_leftovers(tmp_path):
    """Issue 22.10: leftovers of a run that was killed are removed by the next write there."""
    stale = _stale(tmp_path, "o", DEAD_PID)
    stale.mkdir()
    (stale / "half.tif").write_bytes(b"half")
    alive = _stale(tmp_path, "o", os.getppid())
    alive.mkdir()
    with atomic_dir(tmp_path / "o") as tmp:
        (tmp / "a.txt").write_text("1")
    assert not stale.exists() and alive.exists()


def test_train_refuses_an_unwritable_output_before_any_epoch(tmp_path, small_db, monkeypatch):
    """Issue 22.11: a read-only output folder failed only after a full epoch."""
    from napari_interfaces.core.outputs import WriteError
    from napari_interfaces.segment import train as train_mod

    def no_fit(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(train_mod, "fit", no_fit)
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(WriteError, match="cannot write in"):
        train_mod.train(small_db, tmp_path / "ro" / "m.pt", train_mod.TrainConfig(epochs=1))


def test_simulate_image_under_a_file_size_limit_does_not_abort(tmp_path):
    """Issue 22.11: ``ulimit -f`` made the OpenCL compiler abort (SIGABRT, "LLVM ERROR")."""
    (tmp_path / "s.xyz").write_text(
        '4\nLattice="8.0 0.0 0.0 0.0 8.0 0.0 0.0 0.0 8.0" Properties=species:S:1:pos:R:3 '
        'pbc="T T T"\nAu 2.0 2.0 2.0\nAu 4.0 4.0 2.0\nC 2.0 6.0 5.0\nC 6.0 2.0 5.0\n'
    )
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        "from napari_interfaces.cli import main\n"
        "sys.exit(main(['simulate', 'image', sys.argv[1], '--out', sys.argv[2]]))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "nc"))
    env.pop("NAPARI_INTERFACES_DEVICE", None)
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s.xyz"), str(tmp_path / "o.tif")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert res.returncode in (0, 2), res.stderr[-800:]
    assert "LLVM ERROR" not in res.stderr
    if res.returncode == 2:
        assert "cannot write" in res.stderr.splitlines()[-1]


def test_apt_result_folder_names_stay_inside_out():
    """An input named ``...pos`` (stem "..") gets a result folder inside --out (issue 22)."""
    from napari_interfaces.apt.workflows import result_folder_names

    names = result_folder_names(["a/...pos", "b/Si.pos", "c/.hidden.pos"])
    assert names == ["dataset", "Si", "hidden"]
    assert all("/" not in n and n not in (".", "..") for n in names)
