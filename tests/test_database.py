"""Simulated databases: spec parsing, determinism, resumability, dask, real simulator."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from napari_interfaces.core.progress import Cancelled, Progress
from napari_interfaces.simulate.database import (
    completed_indices,
    generate_database,
    read_attrs,
    read_sample,
)
from napari_interfaces.simulate.spec import DatabaseSpec, load_spec, sample_rng

TINY = {
    "name": "t",
    "seed": 3,
    "sampler": "synthetic",
    "output": {"pixel_size": 0.5, "crop": 32},
    "parameters": {
        "particle": {"radius": {"uniform": [3, 5]}, "count": 1},
        "imaging": {"dose": {"loguniform": [100, 1000]}},
    },
}


def _store_arrays(path):
    import zarr

    g = zarr.open_group(str(path), mode="r")
    return {k: np.asarray(g[k][:]) for k in ("image", "labels", "meta", "done")}


def _assert_same_store(a, b):
    x, y = _store_arrays(a), _store_arrays(b)
    for k in x:
        assert np.array_equal(x[k], y[k]), k


def test_spec_draws_are_pinned_and_per_sample():
    spec = DatabaseSpec.from_dict(TINY)
    p = spec.draw(sample_rng(3, 0))
    # pinned: SeedSequence(3, spawn_key=(0,)); keys drawn in sorted order:
    # imaging.dose (log-uniform), then particle.radius
    u = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(0,))).uniform(size=2)
    assert p["imaging"]["dose"] == pytest.approx(np.exp(np.log(100) + u[0] * np.log(10)))
    assert p["particle"]["radius"] == pytest.approx(3 + 2 * u[1])
    assert p["particle"]["radius"] == pytest.approx(3.7573567052056385)
    assert p["particle"]["count"] == 1
    assert spec.draw_sample(3, 5) == spec.draw_sample(3, 5)
    assert spec.draw_sample(3, 5) != spec.draw_sample(3, 6)


def test_spec_distributions_and_errors():
    rng = np.random.default_rng(0)
    spec = DatabaseSpec.from_dict(
        {
            "parameters": {
                "k": {"randint": [1, 3]},
                "c": {"choice": ["a", "b"], "p": [1.0, 0.0]},
                "n": {"normal": [0, 10], "clip": [-1, 1]},
                "m": {"constant": {"q0": 0.5}},
            }
        }
    )
    draws = [spec.draw(rng) for _ in range(200)]
    assert {d["k"] for d in draws} == {1, 2, 3}
    assert {d["c"] for d in draws} == {"a"}
    assert all(-1 <= d["n"] <= 1 for d in draws)
    assert draws[0]["m"] == {"q0": 0.5}
    with pytest.raises(ValueError, match="parameters.r"):
        DatabaseSpec.from_dict({"parameters": {"r": {"uniform": [5, 1]}}})
    with pytest.raises(ValueError, match="one-key mapping"):
        DatabaseSpec.from_dict({"parameters": {"r": {"uniform": [1, 2], "p": 1}}})
    with pytest.raises(ValueError, match="unknown top-level"):
        DatabaseSpec.from_dict({"parameter": {}})
    with pytest.raises(FileNotFoundError):
        load_spec("no_such_spec_file.yaml")


def test_shipped_specs_load():
    paper = load_spec("rangel_dacosta_2024")
    assert paper.pixel_size == 0.2 and paper.crop == 512
    p = paper.draw_sample(0, 0)
    assert 30 <= p["structure"]["particle_diameter"] <= 100
    assert p["microscope"]["frozen_phonons"] == 8 and p["microscope"]["energy_kv"] == 300
    assert 100 <= p["detector"]["dose"] <= 1200
    assert load_spec("hrtem_default").sampler == "multislice"


def test_generate_inline_and_read(tmp_path):
    out = tmp_path / "db.zarr"
    r = generate_database(TINY, out, n=5, scheduler="inline")
    assert (r.n, r.computed, r.skipped) == (5, 5, 0)
    attrs = read_attrs(out)
    assert attrs["seed"] == 3 and attrs["pixel_size"] == 0.5 and attrs["shape"] == [32, 32]
    assert completed_indices(out) == [0, 1, 2, 3, 4]
    image, labels, meta = read_sample(out, 2)
    assert image.shape == labels.shape == (32, 32) and image.dtype == np.float32
    assert 0 < labels.mean() < 1
    assert meta["index"] == 2 and meta["parameters"] == DatabaseSpec.from_dict(TINY).draw_sample(
        3, 2
    )
    # run again: nothing to do
    again = generate_database(TINY, out, n=5, scheduler="inline")
    assert (again.computed, again.skipped) == (0, 5)
    # other seed into the same store is refused
    with pytest.raises(ValueError, match="different spec or seed"):
        generate_database(TINY, out, n=5, seed=4, scheduler="inline")


def test_interrupted_run_resumes_to_identical_store(tmp_path):
    ref = tmp_path / "ref.zarr"
    generate_database(TINY, ref, n=7, scheduler="inline")

    out = tmp_path / "resumed.zarr"
    calls = []

    def stop_after_three(done, total, desc):
        calls.append(done)
        if done == 3:
            raise Cancelled("killed")

    with pytest.raises(Cancelled):
        generate_database(TINY, out, n=7, scheduler="inline", progress=Progress(stop_after_three))
    assert completed_indices(out) == [0, 1, 2]
    # a half-written sample (image written, no completion marker) must be redone
    import zarr

    g = zarr.open_group(str(out), mode="r+")
    g["image"][3] = np.full((32, 32), 99.0, np.float32)
    r = generate_database(TINY, out, n=7, scheduler="inline")
    assert (r.computed, r.skipped) == (4, 3)
    _assert_same_store(ref, out)


def test_killed_subprocess_resumes(tmp_path):
    """A CLI run killed hard (SIGKILL) mid-way resumes to the uninterrupted result."""
    import subprocess
    import sys
    import time

    import yaml

    spec = dict(TINY, output={"pixel_size": 0.5, "crop": 48})
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "killed.zarr"
    cmd = [
        sys.executable,
        "-m",
        "napari_interfaces.cli",
        "simulate",
        "database",
        str(spec_file),
        "--n",
        "400",
        "--out",
        str(out),
        "--scheduler",
        "inline",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline:
        time.sleep(0.1)
        if out.exists():
            try:
                if 3 <= len(completed_indices(out)):
                    break
            except Exception:  # store being created
                pass
    proc.kill()
    proc.wait()
    done = completed_indices(out)
    assert 0 < len(done) < 400
    ref = tmp_path / "ref.zarr"
    n = max(done) + 3
    generate_database(spec, ref, n=n, scheduler="inline")
    r = generate_database(spec, out, n=n, scheduler="inline")
    assert r.skipped == len(done) and r.computed == n - len(done)
    a, b = _store_arrays(ref), _store_arrays(out)
    for k in a:
        assert np.array_equal(a[k][:n], b[k][:n]), k
    assert b["done"][n:].sum() == 0


def test_grow_store(tmp_path):
    out = tmp_path / "grow.zarr"
    generate_database(TINY, out, n=3, scheduler="inline")
    r = generate_database(TINY, out, n=5, scheduler="inline")
    assert (r.computed, r.skipped) == (2, 3)
    ref = tmp_path / "ref.zarr"
    generate_database(TINY, ref, n=5, scheduler="inline")
    _assert_same_store(ref, out)


@pytest.mark.slow
def test_dask_local_cluster_matches_inline(tmp_path):
    pytest.importorskip("distributed")  # the `distributed` extra
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    generate_database(TINY, a, n=4, scheduler="inline")
    r = generate_database(TINY, b, n=4, workers=2)
    assert r.scheduler.startswith("LocalCluster(") and r.workers <= 2
    _assert_same_store(a, b)


def test_multislice_sampler_makes_labelled_sample(tmp_path):
    spec = {
        "sampler": "multislice",
        "output": {"pixel_size": 0.4, "crop": 48},
        "parameters": {
            "structure": {
                "element": "Au",
                "shape": "sphere",
                "particle_diameter": 10.0,
                "substrate_thickness": 10.0,
            },
            "microscope": {"energy_kv": 300, "sampling": 0.2, "defocus": {"uniform": [-100, 100]}},
            "detector": {"dose": 1000},
        },
    }
    out = tmp_path / "ms.zarr"
    generate_database(spec, out, n=1, scheduler="inline")
    image, labels, meta = read_sample(out, 0)
    # the device is not part of the spec: the same store made with NumPy FFTs
    # agrees with the default (torch) one to float32 rounding and Poisson ties
    other = tmp_path / "ms_numpy.zarr"
    generate_database(spec, other, n=1, scheduler="inline", device="numpy")
    image2, labels2, meta2 = read_sample(other, 0)
    assert meta2["parameters"]["device"] == "numpy" and "device" not in meta["parameters"]
    assert np.mean(image2 != image) < 0.01 and np.mean(labels2 != labels) < 0.01
    assert image.shape == (48, 48)
    frac = labels.mean()
    # a 10 Å particle in a 19.2 Å field covers at most pi*5^2/19.2^2 = 21 % of the
    # pixels; exit-wave labels of so small a particle are smaller (weak phase)
    assert 0.005 < frac < 0.3
    assert meta["info"]["sampler"] == "multislice"
    json.dumps(meta)
    with pytest.raises(ValueError, match="not a simulator parameter"):
        bad = dict(spec, parameters={"structure": {"radius": 3}})
        generate_database(bad, tmp_path / "bad.zarr", n=1, scheduler="inline")


def tiny_multislice(dose: float) -> dict:
    """A 12.8 Å multislice spec at 0.4 Å/px (32²): an 8 Å Au sphere on 6 Å of a-C."""
    return {
        "sampler": "multislice",
        "output": {"pixel_size": 0.4, "crop": 32},
        "parameters": {
            "structure": {
                "element": "Au",
                "shape": "sphere",
                "particle_diameter": 8.0,
                "substrate_thickness": 6.0,
            },
            "microscope": {"energy_kv": 300, "sampling": 0.2},
            "detector": {"dose": dose},
        },
    }


def test_resume_refuses_another_multislice_scheme(tmp_path, monkeypatch):
    """A store records its multislice band-limit scheme (issue 27) and is resumed only
    under it; a store from before the scheme was recorded counts as 'transmission'."""
    import zarr

    from napari_interfaces.core.errors import InputError
    from napari_interfaces.simulate.multislice import BANDLIMIT_ENV

    spec = tiny_multislice(dose=1000)
    out = tmp_path / "ms.zarr"
    monkeypatch.delenv(BANDLIMIT_ENV, raising=False)
    generate_database(spec, out, n=1, scheduler="inline", device="numpy")
    assert zarr.open_group(str(out), mode="r").attrs["multislice_bandlimit"] == "propagator"
    # the 8 Å particle leaves no label pixel in this 12.8 Å field at 0.4 Å/px: an
    # all-background sample is complete (its chunk is written), not a damaged store
    image, labels, _ = read_sample(out, 0)
    assert labels.max() == 0 and image.std() > 0
    monkeypatch.setenv(BANDLIMIT_ENV, "transmission")
    with pytest.raises(InputError, match=f"'propagator'.*{BANDLIMIT_ENV}=propagator"):
        generate_database(spec, out, n=2, scheduler="inline", device="numpy")
    assert len(completed_indices(out)) == 1  # nothing lost, nothing added
    # an old store (no key) was made with the textbook scheme and resumes under it
    g = zarr.open_group(str(out), mode="r+")
    del g.attrs["multislice_bandlimit"]
    r = generate_database(spec, out, n=2, scheduler="inline", device="numpy")
    assert (r.computed, r.skipped) == (1, 1)
    # a synthetic store does not depend on the scheme
    syn = tmp_path / "syn.zarr"
    generate_database(TINY, syn, n=1, scheduler="inline")
    assert zarr.open_group(str(syn), mode="r").attrs["multislice_bandlimit"] is None
    monkeypatch.setenv(BANDLIMIT_ENV, "propagator")
    assert generate_database(TINY, syn, n=2, scheduler="inline").computed == 1


def test_scheme_travels_with_the_task(monkeypatch):
    """A worker whose environment names another band-limit scheme (a remote machine)
    simulates with the store's scheme, passed in the task; its environment is restored."""
    from napari_interfaces.simulate.database import _sample_task, compute_sample
    from napari_interfaces.simulate.multislice import BANDLIMIT_ENV

    spec = DatabaseSpec.from_dict(tiny_multislice(dose=1e6)).to_dict()
    monkeypatch.setenv(BANDLIMIT_ENV, "transmission")
    want = compute_sample(spec, 0, 0, "multislice", "numpy")[1]
    monkeypatch.setenv(BANDLIMIT_ENV, "propagator")
    other = compute_sample(spec, 0, 0, "multislice", "numpy")[1]
    got = _sample_task(0, spec, 0, "multislice", "numpy", bandlimit="transmission")[1]
    assert np.array_equal(got, want) and not np.array_equal(other, want)
    assert os.environ[BANDLIMIT_ENV] == "propagator"


def _refused_address() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def test_refused_scheduler_fails_fast_and_leaves_no_store(tmp_path):
    from napari_interfaces.core.errors import InputError

    out = tmp_path / "db.zarr"
    addr = _refused_address()
    with pytest.raises(InputError, match=r"^scheduler tcp://127\.0\.0\.1:\d+: cannot reach"):
        generate_database(TINY, out, n=2, scheduler=addr)
    assert not out.exists()


def test_failed_first_sample_leaves_no_store(tmp_path):
    out = tmp_path / "db.zarr"

    def broken(params, output, rng):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        generate_database(TINY, out, n=2, scheduler="inline", sampler=broken)
    assert not out.exists()


def test_runner_inline_and_cancel():
    from napari_interfaces.core.runner import cap_workers, run_tasks

    out = []
    info = run_tasks(pow, [1, 2, 3], kwargs={"exp": 2}, on_result=out.append, scheduler="inline")
    assert out == [1, 4, 9] and info.tasks == 3 and info.scheduler == "inline"
    p = Progress()
    p.cancel_event.set()
    with pytest.raises(Cancelled):
        run_tasks(
            pow, [1], kwargs={"exp": 2}, on_result=out.append, scheduler="inline", progress=p
        )
    assert cap_workers(10_000, 1) >= 1
    with pytest.raises(ValueError, match="^workers: must be >= 1"):
        cap_workers(0, 1)


@pytest.mark.slow
def test_runner_local_cluster_back_pressure():
    pytest.importorskip("distributed")  # the `distributed` extra
    from napari_interfaces.core.runner import run_tasks

    out = []
    info = run_tasks(pow, range(20), kwargs={"exp": 2}, on_result=out.append, workers=1)
    assert sorted(out) == [i * i for i in range(20)]
    assert info.scheduler == "LocalCluster(1x1)" and info.tasks == 20


BILLION_LAUGHS = """\
name: bomb
sampler: synthetic
description: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_yaml_alias_bomb_is_refused_and_leaves_no_store(tmp_path, capsys):
    from napari_interfaces.cli import main
    from napari_interfaces.core.errors import InputError

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    with pytest.raises(
        InputError, match=r"bomb.yaml: line 4: YAML aliases \(\*a\) are not allowed"
    ):
        load_spec(str(bomb))
    out = tmp_path / "db.zarr"
    rc = main(["simulate", "database", str(bomb), "--n", "2", "--out", str(out), "--quiet"])
    assert rc == 2 and "YAML aliases" in capsys.readouterr().err
    assert not out.exists()


def test_empty_spec_and_bad_parameters_are_named(tmp_path, capsys):
    import yaml

    from napari_interfaces.cli import main

    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    out = tmp_path / "db.zarr"
    assert main(["simulate", "database", str(empty), "--out", str(out), "--quiet"]) == 2
    assert "empty.yaml: the spec is empty" in capsys.readouterr().err
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    base = [
        "simulate",
        "database",
        str(spec),
        "--out",
        str(out),
        "--quiet",
        "--scheduler",
        "inline",
    ]
    for bad, name in (
        (["--n", "0"], "--n"),
        (["--n", "-1"], "--n"),
        (["--seed", "-1"], "--seed"),
        (["--workers", "0"], "--workers"),
        (["--threads-per-worker", "0"], "--threads-per-worker"),
    ):
        assert main(base + bad) == 2, bad
        assert capsys.readouterr().err.startswith(f"napari-interfaces: error: {name}"), bad
    assert not out.exists()
    # the store may never be the spec itself
    assert main(["simulate", "database", str(spec), "--out", str(spec), "--quiet"]) == 2
    assert "one of the inputs" in capsys.readouterr().err
    for output, msg in (
        ({"pixel_size": 0, "crop": 32}, "output.pixel_size"),
        ({"pixel_size": 0.5, "crop": 4}, "output.crop"),
    ):
        with pytest.raises(ValueError, match=msg):
            DatabaseSpec.from_dict(dict(TINY, output=output))
    with pytest.raises(ValueError, match="seed"):
        DatabaseSpec.from_dict(dict(TINY, seed=-3))
