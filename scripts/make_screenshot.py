"""Regenerate the README screenshot (docs/images/screenshot.png).

Writes a seeded synthetic APT specimen (layered γ/γ′, known
ground truth) as ``.pos`` + ``.rrng``, opens it through the plugin's reader in
a real napari window, runs the "Interfaces" dock (fine-tuned HED by default),
recomputes the proxigram from the phases layer and saves
``viewer.screenshot(canvas_only=False)``. Needs a display; on a headless
machine run it under Xvfb with Mesa GL::

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/make_screenshot.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parents[1] / "docs/images/screenshot.png"
    )
    parser.add_argument("--geometry", default="layered")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    import napari
    from skimage.io import imsave

    from napari_interfaces.apt.synthetic import synthesize

    work = Path(tempfile.mkdtemp())
    synth = synthesize(args.geometry, size_nm=(24.0, 24.0, 30.0), seed=args.seed)
    paths = synth.write(work, stem="specimen")

    viewer = napari.Viewer(title="napari-interfaces", show=True)
    viewer.window._qt_window.resize(1500, 900)
    viewer.open(str(paths["pos"]), plugin="napari-interfaces")
    _, dock = viewer.window.add_plugin_dock_widget("napari-interfaces", "Interfaces")
    dock.run(sync=True)
    dock.recompute_profiles()
    for layer in viewer.layers:  # show composition + phases, hide the point cloud
        layer.visible = layer.name.endswith(("phases", "Al at.%"))
    viewer.dims.order = (1, 0, 2)  # side view: z vertical, x horizontal
    viewer.reset_view()
    for _ in range(20):
        napari.qt.get_qapp().processEvents()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    imsave(args.out, shot, check_contrast=False)
    print(
        f"wrote {args.out} ({shot.shape[1]}x{shot.shape[0]}); layers: {[lay.name for lay in viewer.layers]}"
    )
    viewer.close()


if __name__ == "__main__":
    main()
