"""Real screenshots of the plugin's docks for the docs (docs/images/gui_*.png).

Opens real napari windows and drives every dock through its main loop with
small, seeded inputs made here (nothing is downloaded):

* ``gui_all_docks.png`` — every dock of ``napari.yaml`` opened from the
  Plugins menu in one 1920×1080 window: they share the right dock area as
  tabs, here the Segment dock raised (basic parameters, an Advanced group
  collapsed, the Segment and Cancel buttons in the footer) next to a
  simulated HRTEM image;
* ``gui_apt_explorer.png`` — APT explorer: a synthetic layered γ/γ′ specimen,
  composition volumes, mass spectrum and a slab view;
* ``gui_apt_interfaces.png`` — Interfaces: phases found on the same specimen,
  proxigram recomputed from the (correctable) phases layer;
* ``gui_apt_clusters.png`` — APT cluster analysis: solute clusters in a
  synthetic Fe-Cr-Ni-Cu specimen, points coloured by cluster + table;
* ``gui_hrtem.png`` — HRTEM simulator: an Au particle on amorphous carbon,
  image + labels + atoms;
* ``gui_segment.png`` — Segment micrograph: the shipped U-Net on that image;
* ``gui_database.png`` — Simulated database: a tiny synthetic store, one sample
  shown;
* ``gui_cluster.png`` — Chip communities: the synthetic texture mosaic.

Needs a display; on a headless machine run it under Xvfb with Mesa GL and a
full-HD screen::

    xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/make_screenshot.py

``--only hrtem,segment`` makes a subset; ``--readme`` also rewrites the README
screenshot (docs/images/screenshot.png: the Interfaces workflow). A workflow
that fails is reported and the others still run (exit status 1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
WORKFLOWS = (
    "all_docks",
    "apt_explorer",
    "apt_interfaces",
    "apt_clusters",
    "hrtem",
    "segment",
    "database",
    "cluster",
)


# -- helpers -------------------------------------------------------------------
def _process(n: int = 20) -> None:
    from napari.qt import get_qapp

    app = get_qapp()
    for _ in range(n):
        app.processEvents()
        time.sleep(0.01)


def _viewer(size=(1600, 1000)):
    import napari

    viewer = napari.Viewer(title="napari-interfaces", show=True)
    viewer.window._qt_window.resize(*size)
    _process()
    return viewer


def _open_apt(viewer, path: Path, timeout: float = 300.0) -> None:
    """Open an APT file and wait for its background load (a large file opens in two steps).

    Otherwise the full layers can land after the dock's own results and the shot shows
    both (``Al at.% [...] [1]``).
    """
    from napari_interfaces._hooks import apt_data

    viewer.open(str(path), plugin="napari-interfaces")
    t0 = time.perf_counter()
    while apt_data._OPEN_WORKERS and time.perf_counter() - t0 < timeout:
        _process(5)
    _process()


def _dock(viewer, name: str):
    _, dock = viewer.window.add_plugin_dock_widget("napari-interfaces", name)
    if hasattr(dock, "sync"):
        dock.sync = True  # run jobs inline: the script waits for each result anyway
    _process()
    return dock


def _setp(dock: Any, name: str, value: Any) -> None:
    """Set a Dock parameter (``dock.params[name]``), by choice value or shown text."""
    from napari_interfaces._widgets._dock import select_choice

    w = dock.params[name]
    if hasattr(w, "choices"):
        if not select_choice(w, value):
            raise KeyError(f"{name}: no choice {value!r}")
    else:
        w.value = value


def _check(job: Any, dock: Any) -> None:
    if job is None or job.state != "done":
        status = getattr(getattr(dock, "status", None), "value", "")
        raise RuntimeError(f"job {getattr(job, 'state', None)}: {status}")


def _save(viewer, name: str, out: Path) -> Path:
    from skimage.io import imsave

    _process(30)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    path = out / name
    path.parent.mkdir(parents=True, exist_ok=True)
    imsave(path, shot, check_contrast=False)
    print(f"wrote {path} ({shot.shape[1]}x{shot.shape[0]})", flush=True)
    return path


def _hrtem_sample(viewer) -> None:
    from napari_interfaces._hooks.simulate import sample_hrtem_particle

    for data, kw, kind in sample_hrtem_particle():
        getattr(viewer, f"add_{kind}")(data, **kw)


def _apt_files(work: Path, seed: int = 3) -> dict:
    from napari_interfaces.apt.synthetic import synthesize

    synth = synthesize("layered", size_nm=(20.0, 20.0, 26.0), seed=seed)
    return synth.write(work, stem="specimen")


# -- workflows -------------------------------------------------------------------
def shot_all_docks(out: Path, work: Path) -> list[Path]:
    from npe2 import PluginManifest

    viewer = _viewer((1920, 1080))
    _hrtem_sample(viewer)
    menu = viewer.window.plugins_menu
    sub = next(a.menu() for a in menu.actions() if a.menu() and "interfaces" in a.text())
    items = {a.text(): a for a in sub.actions()}
    for contrib in PluginManifest.from_distribution("napari-interfaces").contributions.widgets:
        items[contrib.display_name].trigger()  # as a user does: Plugins > napari interfaces
        _process(5)
    from napari._qt.widgets.qt_viewer_dock_widget import QtViewerDockWidget

    for dw in viewer.window._qt_window.findChildren(QtViewerDockWidget):
        if dw.name.startswith("Segment micrograph"):
            dw.raise_()
    viewer.reset_view()
    paths = [_save(viewer, "gui_all_docks.png", out)]
    viewer.close()
    return paths


def shot_apt_explorer(out: Path, work: Path) -> list[Path]:
    files = _apt_files(work)
    viewer = _viewer()
    _open_apt(viewer, files["pos"])
    dock = _dock(viewer, "APT explorer")
    dock.set_file(str(files["pos"]))
    _setp(dock, "voxel_size", 1.0)
    _check(dock.compute(), dock)
    _setp(dock, "slice_axis", "y")
    _setp(dock, "thickness", 4.0)
    for layer in viewer.layers:
        layer.visible = layer.name.startswith("Al at.%")
    viewer.reset_view()
    paths = [_save(viewer, "gui_apt_explorer.png", out)]
    viewer.close()
    return paths


def shot_apt_interfaces(out: Path, work: Path, readme: bool = False) -> list[Path]:
    files = _apt_files(work)
    viewer = _viewer()
    _open_apt(viewer, files["pos"])
    dock = _dock(viewer, "Interfaces")
    _check(dock.run(), dock)
    job = dock.recompute_profiles()
    _check(job, dock)
    for layer in viewer.layers:  # composition + phases; hide the point cloud
        layer.visible = layer.name.startswith(("phases", "Al at.%"))
    viewer.dims.order = (1, 0, 2)  # side view: z vertical, x horizontal
    viewer.reset_view()
    paths = [_save(viewer, "gui_apt_interfaces.png", out)]
    if readme:
        paths.append(_save(viewer, "screenshot.png", out))
    viewer.close()
    return paths


def shot_apt_clusters(out: Path, work: Path) -> list[Path]:
    from napari_interfaces.apt.synthetic import synthesize_particles
    from napari_interfaces.io.apt_pointcloud import write_pos
    from napari_interfaces.io.ranges import write_rrng

    s = synthesize_particles(
        "clusters", size_nm=(20, 20, 24), seed=35, n_particles=8, solutes_per_cluster=(30, 50)
    )
    work.mkdir(parents=True, exist_ok=True)
    pos = write_pos(work / "clusters.pos", s.cloud)
    write_rrng(work / "clusters.rrng", s.ranges)
    viewer = _viewer()
    dock = _dock(viewer, "APT cluster analysis")
    _setp(dock, "point_cloud", pos)
    _setp(dock, "solutes", "Cu Ni")  # the clustered solutes (Cr is in solid solution)
    _setp(dock, "dmax", 0.7)
    _setp(dock, "n_min", 11)
    _check(dock.run(), dock)
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    paths = [_save(viewer, "gui_apt_clusters.png", out)]
    viewer.close()
    return paths


def shot_hrtem(out: Path, work: Path) -> list[Path]:
    viewer = _viewer()
    dock = _dock(viewer, "HRTEM simulator")
    _setp(dock, "extent", "48")  # spec fields; a list field's text: one value = square
    _setp(dock, "particle_diameter", "26")
    _setp(dock, "sampling", 0.125)
    _check(dock.build(), dock)
    _check(dock.simulate(), dock)
    _setp(dock, "defocus", -80.0)
    _process(60)
    for layer in viewer.layers:
        if layer.__class__.__name__ == "Points":
            layer.visible = False
    viewer.reset_view()
    paths = [_save(viewer, "gui_hrtem.png", out)]
    viewer.close()
    return paths


def shot_segment(out: Path, work: Path) -> list[Path]:
    viewer = _viewer()
    _hrtem_sample(viewer)
    for layer in list(viewer.layers):
        if layer.__class__.__name__ != "Image":
            viewer.layers.remove(layer)  # the dock's own result, not the sample's truth
    dock = _dock(viewer, "Segment micrograph")
    _check(dock.run(), dock)
    viewer.reset_view()
    paths = [_save(viewer, "gui_segment.png", out)]
    viewer.close()
    return paths


def shot_database(out: Path, work: Path) -> list[Path]:
    viewer = _viewer()
    dock = _dock(viewer, "Simulated database")
    _setp(dock, "example", "tiny_synthetic")
    _setp(dock, "out", work / "database.zarr")
    _setp(dock, "n", 6)
    _check(dock.run(), dock)
    _setp(dock, "index", 2)
    dock.show_sample()
    viewer.reset_view()
    paths = [_save(viewer, "gui_database.png", out)]
    viewer.close()
    return paths


def shot_cluster(out: Path, work: Path) -> list[Path]:
    from napari_interfaces._hooks.cluster import sample_texture_mosaic

    viewer = _viewer()
    (img, kw, _), _truth = sample_texture_mosaic()
    viewer.add_image(img, **kw)
    dock = _dock(viewer, "Chip communities")
    dock.reset_choices()
    _setp(dock, "merge_to", 4)
    _check(dock.run(), dock)
    viewer.reset_view()
    paths = [_save(viewer, "gui_cluster.png", out)]
    viewer.close()
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder (docs/images)")
    parser.add_argument("--only", default="", help=f"comma list of {', '.join(WORKFLOWS)}")
    parser.add_argument("--readme", action="store_true", help="also docs/images/screenshot.png")
    args = parser.parse_args(argv)
    chosen = [w.strip() for w in args.only.split(",") if w.strip()] or list(WORKFLOWS)
    unknown = set(chosen) - set(WORKFLOWS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(WORKFLOWS)}")

    failed = []
    work = Path(tempfile.mkdtemp(prefix="napari-interfaces-shots-"))
    for name in chosen:
        t0 = time.perf_counter()
        func = globals()[f"shot_{name}"]
        try:
            kwargs = {"readme": True} if name == "apt_interfaces" and args.readme else {}
            func(args.out, work / name, **kwargs)
            print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
        except Exception:  # noqa: BLE001 - report, go on with the other docks
            traceback.print_exc()
            failed.append(name)
            print(f"{name}: FAILED", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
