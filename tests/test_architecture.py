"""The engine never imports Qt or napari, the package imports lazily, and the
layers keep their import contracts (docs/architecture.md).

Each check runs in a fresh interpreter so modules imported by other tests
(or by pytest plugins such as napari's) cannot hide a violation.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import napari_interfaces

ENGINE = ("core", "aptmodel", "io", "nets", "apt", "simulate", "segment", "cluster", "classify")
FORBIDDEN_GUI = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "vispy")


def engine_modules() -> list[str]:
    names = []
    for sub in ENGINE:
        names.append(f"napari_interfaces.{sub}")
        pkg = __import__(f"napari_interfaces.{sub}", fromlist=["__path__"])
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"napari_interfaces.{sub}."):
            names.append(info.name)
    return sorted(names)


def _imported_after(statement: str) -> set[str]:
    code = (
        "import sys, json\n"
        f"{statement}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_engine_modules_are_found():
    mods = engine_modules()
    assert "napari_interfaces.core.progress" in mods
    assert all(m.startswith("napari_interfaces.") for m in mods)


def test_engine_imports_no_gui():
    mods = engine_modules()
    statement = f"import importlib\nfor m in {mods!r}:\n    importlib.import_module(m)\n"
    top = _imported_after(statement)
    leaked = sorted(top & set(FORBIDDEN_GUI))
    assert not leaked, f"engine modules imported GUI packages: {leaked}"


def test_package_import_is_lazy():
    top = _imported_after("import napari_interfaces, napari_interfaces.cli")
    heavy = sorted(
        top & {"torch", "pyopencl", "dask", "distributed", "zarr", "sklearn", *FORBIDDEN_GUI}
    )
    assert not heavy, f"`import napari_interfaces` pulled in {heavy}"


def test_widgets_are_outside_engine():
    # Widgets live in _widgets/ only; no engine subpackage hides a Qt module.
    assert napari_interfaces.__version__
    for name in engine_modules():
        assert "._widgets" not in name


# ------------------------------------------------------------ import contracts
# The layers, the engine's forbidden imports (front ends, Qt, napari, magicgui)
# and the absence of cycles are import-linter contracts in pyproject.toml
# ([tool.importlinter]; `.venv/bin/lint-imports`, run by .ci/run). grimp reads
# every import, also those inside functions, so a lazy import cannot hide a
# violation. This test runs the same check where import-linter is installed.
SRC = Path(napari_interfaces.__file__).resolve().parent
ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter", reason="needs import-linter (the testing extra)")
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("no pyproject.toml beside the tests")
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


# ------------------------------------------------------------ napari readers
PLAIN = (
    "plain.tif",
    "plain.tiff",
    "plain.png",
    "plain.jpg",
    "plain.csv",
    "plain.txt",
    "plain.npz",
)
CLAIMED = {
    ".pos",
    ".epos",
    ".apt",
    ".ato",
    ".rrng",
    ".rng",
    ".env",
    ".dm3",
    ".dm4",
    ".emd",
    ".mrc",
}


def _manifest():
    from npe2 import PluginManifest

    return PluginManifest.from_file(SRC / "napari.yaml")


def test_readers_claim_only_formats_napari_cannot_open():
    patterns = [p for r in _manifest().contributions.readers for p in r.filename_patterns]
    suffixes = {p.lower().lstrip("*") for p in patterns}
    assert suffixes == CLAIMED


def test_plain_files_raise_no_reader_choice(tmp_path):
    # a plain TIFF/PNG/CSV opens with napari's own reader: this plugin must not
    # be among the compatible readers (that is what makes napari ask)
    import fnmatch

    readers = _manifest().contributions.readers
    for name in PLAIN:
        for r in readers:
            assert not any(fnmatch.fnmatch(name, p) for p in r.filename_patterns), (name, r)


def test_open_as_dock_is_contributed():
    m = _manifest()
    commands = {c.id: c.python_name for c in m.contributions.commands}
    widgets = {w.command for w in m.contributions.widgets}
    assert "napari-interfaces.make_open_as_widget" in widgets
    assert commands["napari-interfaces.make_open_as_widget"].endswith("open_as:OpenAsDock")


def test_open_as_reads_plain_files_explicitly(tmp_path):
    # what the readers no longer claim opens through the "Open as..." dock
    if not _has_qt():
        pytest.skip("the dock module needs a Qt binding")
    import numpy as np
    import tifffile

    from napari_interfaces._widgets.open_as import micrograph_layers, point_cloud_layers
    from napari_interfaces.core.errors import InputError

    img = np.arange(64 * 48, dtype=np.float32).reshape(48, 64)
    tifffile.imwrite(tmp_path / "plain.tif", img)
    [(data, kw, kind)] = micrograph_layers(tmp_path / "plain.tif", pixel_size=0.25)
    assert kind == "image" and np.array_equal(data, img)
    assert kw["scale"] == (0.25, 0.25) and kw["units"] == ("Å", "Å")
    assert kw["metadata"]["pixel_size_source"] == "typed"
    [(_, kw, _)] = micrograph_layers(tmp_path / "plain.tif")  # no size in the file
    assert "scale" not in kw
    with pytest.raises(InputError):
        micrograph_layers(tmp_path / "missing.tif")
    with pytest.raises(InputError, match="pixel size"):
        micrograph_layers(tmp_path / "plain.tif", pixel_size=float("nan"))

    # a CSV point cloud with a range file chosen explicitly
    from _apt_excerpt import write_excerpt
    from napari_interfaces.io import read_pos

    ex = write_excerpt(tmp_path)
    cloud = read_pos(ex.pos)
    xyzm = np.column_stack([np.asarray(cloud.xyz), np.asarray(cloud.mass)])
    csv = tmp_path / "cloud.csv"
    np.savetxt(csv, xyzm, delimiter=",", header="x,y,z,m", comments="")
    layers = point_cloud_layers(csv, ex.rrng)
    kinds = [k for _, _, k in layers]
    assert kinds.count("points") == 1 and "image" in kinds
    points = next(d for d, _, k in layers if k == "points")
    assert len(points) == len(xyzm)
    with pytest.raises(InputError, match="no such range file"):
        point_cloud_layers(csv, tmp_path / "missing.rrng")


def _has_qt() -> bool:
    try:
        import qtpy.QtWidgets  # noqa: F401
    except Exception:  # qtpy raises its own error without a binding (plain install)
        return False
    return True


@pytest.mark.gui
@pytest.mark.skipif(not _has_qt(), reason="needs a Qt binding (pip install napari-interfaces[qt])")
def test_open_as_dock_adds_layers(make_napari_viewer, tmp_path):
    import numpy as np
    import tifffile

    viewer = make_napari_viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-interfaces", "Open as...")
    dock.sync = True  # the jobs run in the test's thread
    tifffile.imwrite(tmp_path / "plain.tif", np.ones((32, 40), np.float32))
    dock.image_path.value = tmp_path / "plain.tif"
    dock.pixel_size.value = 0.5
    dock.open_micrograph()
    [layer] = viewer.layers
    assert layer.name == "plain" and tuple(layer.scale) == (0.5, 0.5)
    assert [str(u) for u in layer.units] == ["angstrom", "angstrom"]
    assert layer.metadata["pixel_size_source"] == "typed"


def test_napari_offers_one_reader_for_plain_files():
    # what napari itself resolves: a plain TIFF/PNG/CSV/NPZ has napari's reader
    # only (no reader choice); APT and DM files have ours
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()

    def plugins(name):
        return {r.plugin_name for r in pm.iter_compatible_readers([name])}

    for name in PLAIN:
        assert "napari-interfaces" not in plugins(name), name
    for name in ("a.pos", "a.epos", "a.apt", "a.ato", "a.rrng", "a.dm3", "a.emd", "a.mrc"):
        assert "napari-interfaces" in plugins(name), name


# ------------------------------------------------------------ honest dependencies
#: Imported only inside a guard, with a message saying how to install them.
OPTIONAL_IMPORTS = {"igraph", "leidenalg"}


def _third_party_imports() -> set[str]:
    names = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "napari_interfaces"}


def _declared() -> tuple[set[str], set[str]]:
    """Normalised distribution names: (base dependencies, all incl. extras)."""
    import re

    import tomllib

    def norm(req: str) -> str:
        return re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("no pyproject.toml beside the tests")
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    base = {norm(r) for r in project["dependencies"]}
    extras = {norm(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    return base, base | extras


def test_every_import_is_a_declared_dependency():
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    base, declared = _declared()
    missing = []
    for name in sorted(_third_party_imports() - OPTIONAL_IMPORTS):
        provided = {d.lower().replace("_", "-") for d in dists.get(name, [name])}
        if not provided & declared:
            missing.append(f"{name} ({', '.join(sorted(provided))})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_base_dependency_is_used():
    # declared-but-unused dependencies go (napari's plugin manager installs them all)
    from importlib.metadata import packages_distributions

    modules_of: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for d in dists:
            modules_of.setdefault(d.lower().replace("_", "-"), set()).add(module)
    imported = _third_party_imports()
    base, _ = _declared()
    unused = sorted(d for d in base if not modules_of.get(d, {d}) & imported)
    assert not unused, f"declared but never imported: {unused}"


def test_readme_and_hub_links_are_absolute():
    # PyPI and the napari hub render these files outside the repository
    import re

    root = Path(__file__).resolve().parents[1]
    for name in ("README.md", ".napari-hub/DESCRIPTION.md"):
        path = root / name
        if not path.is_file():
            pytest.skip(f"{name} not beside the tests")
        links = re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))
        relative = [link for link in links if not link.startswith(("https://", "http://", "#"))]
        assert links and not relative, (name, relative)
