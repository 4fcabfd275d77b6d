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


def test_cleanup_stale(tmp_path):
    (tmp_path / f".x.tif.{TMP_MARK}-1234abcd.tif").write_text("half")
    (tmp_path / f".res.{TMP_MARK}-1234abcd").mkdir()
    (tmp_path / "keep.tif").write_text("x")
    removed = cleanup_stale(tmp_path)
    assert len(removed) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]
    assert cleanup_stale(tmp_path / "missing") == []


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


def test_numba_cache_goes_to_the_user_cache(tmp_path):
    # numba's cache=True kernels must not be written into site-packages
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NAPARI_INTERFACES_CACHE_DIR"] = str(tmp_path)
    code = (
        "import os, sys, napari_interfaces;"
        "assert 'numba' not in sys.modules;"
        "import numba;"
        "print(os.environ['NUMBA_CACHE_DIR']); print(numba.config.CACHE_DIR)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(tmp_path / "numba")] * 2
    # a user's own NUMBA_CACHE_DIR wins
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(tmp_path / "mine")] * 2


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
    with pytest.raises(OSError, match="disk full"), atomic_dir(out) as tmp:
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
