"""Regenerate the README screenshot (docs/images/screenshot.png).

Runs the demo of one pipeline, opens a real napari window with its layers and
the pipeline's dock, and saves ``viewer.screenshot(canvas_only=False)``.
Needs a display; on a headless machine run it under Xvfb with Mesa GL::

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/make_screenshot.py

Options: ``--pipeline apt|hrtem|segment|cluster`` (default apt), ``--out PATH``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

#: pipeline -> display names of the docks to open beside its layers
DOCKS = {
    "apt": ["Interfaces"],
    "hrtem": ["HRTEM simulator"],
    "segment": ["Segment micrograph"],
    "cluster": ["Chip communities"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="apt", choices=sorted(DOCKS))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parents[1] / "docs/images/screenshot.png"
    )
    args = parser.parse_args()

    import napari
    from npe2 import PluginManifest
    from skimage.io import imsave

    from napari_interfaces.demo import run_demo

    layers = run_demo(Path(tempfile.mkdtemp()), [args.pipeline])[args.pipeline]
    viewer = napari.Viewer(title="napari-interfaces", show=True)
    viewer.window._qt_window.resize(1500, 900)
    for data, kwargs, kind in layers:
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    known = {
        w.display_name
        for w in PluginManifest.from_distribution("napari-interfaces").contributions.widgets
    }
    for name in DOCKS[args.pipeline]:
        if name in known:
            viewer.window.add_plugin_dock_widget("napari-interfaces", name)
    viewer.reset_view()
    for _ in range(20):
        napari.qt.get_qapp().processEvents()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    imsave(args.out, shot, check_contrast=False)
    print(f"wrote {args.out} ({shot.shape[1]}x{shot.shape[0]})")
    viewer.close()


if __name__ == "__main__":
    main()
