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
    # the engine names the parameter; the CLI spells it --scheduler
    assert msg.startswith("scheduler inproc://x: ") and "\n" not in msg
    assert err.value.spelled(lambda f: "--" + f).startswith("--scheduler inproc://x: ")
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


# ------------------------------------------------------------------ packaging metadata
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
#: PyPI name -> conda-forge name where they differ
CONDA_NAMES = {"torch": "pytorch", "dask": "dask-core", "matplotlib": "matplotlib-base"}


def _pyproject() -> dict:
    import tomllib

    path = ROOT / "pyproject.toml"
    if not path.is_file():
        pytest.skip("no pyproject.toml beside the tests")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _req(req: str) -> tuple[str, str]:
    import re

    name, spec = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", req).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_conda_recipe_runs_what_pip_installs():
    import yaml

    project = _pyproject()["project"]
    recipe_path = ROOT / "recipe" / "meta.yaml"
    if not recipe_path.is_file():
        pytest.skip("no recipe/ beside the tests")
    text = recipe_path.read_text(encoding="utf-8")
    # the Jinja the recipe uses: {% set %} lines and {{ var }} substitutions
    variables = dict(__import__("re").findall(r'{% set (\w+) = "([^"]*)" %}', text))
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("{%"))
    for key, value in variables.items():
        body = body.replace("{{ " + key + " }}", value).replace("{{ " + key + "|lower }}", value)
    body = body.replace("{{ name[0] }}", variables["name"][0]).replace("{{ PYTHON }}", "python")
    recipe = yaml.safe_load(body)

    assert recipe["build"]["noarch"] == "python"
    assert variables["python_min"] == project["requires-python"].removeprefix(">=")
    run = dict(_req(r) for r in recipe["requirements"]["run"])
    assert run.pop("python") == ">=" + variables["python_min"]
    pip = {CONDA_NAMES.get(n, n): spec for n, spec in map(_req, project["dependencies"])}
    assert run == pip
    assert recipe["about"]["license"] == project["license"]
    licence_files = sorted(recipe["about"]["license_file"])
    assert licence_files == sorted(
        ["LICENSE"] + [f"LICENSES/{p.name}" for p in (ROOT / "LICENSES").iterdir()]
    )
    (entry,) = recipe["build"]["entry_points"]
    assert entry == "napari-interfaces = " + project["scripts"]["napari-interfaces"]


def test_classifiers_declare_what_ci_tests():
    import yaml

    project = _pyproject()["project"]
    workflow = ROOT / ".github" / "workflows" / "tests.yml"
    if not workflow.is_file():
        pytest.skip("no .github/workflows beside the tests")
    matrix = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"]["test"]["strategy"]
    pythons = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if "Python :: 3." in c}
    assert pythons == set(matrix["matrix"]["python-version"])
    assert project["requires-python"] == ">=" + min(pythons, key=lambda v: int(v.split(".")[1]))
    systems = {c for c in project["classifiers"] if c.startswith("Operating System")}
    platforms = {p.split("-")[0] for p in matrix["matrix"]["platform"]}
    expected = {
        "ubuntu": "Operating System :: POSIX :: Linux",
        "macos": "Operating System :: MacOS",
        "windows": "Operating System :: Microsoft :: Windows",
    }
    assert systems == {expected[p] for p in platforms}
