"""The engine never imports Qt or napari, and the package imports lazily.

Each check runs in a fresh interpreter so modules imported by other tests
(or by pytest plugins such as napari's) cannot hide a violation.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import napari_interfaces

ENGINE = ("core", "io", "apt", "simulate", "segment", "cluster")
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
    statement = "\n".join(f"import {m}" for m in mods)
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
