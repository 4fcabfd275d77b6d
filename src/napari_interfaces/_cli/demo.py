"""``napari-interfaces demo``: run the main job on built-in data."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(groups: dict) -> None:
    from ..demo import PIPELINES

    p = groups["root"].add_parser(
        "demo",
        help="run the pipelines headlessly on built-in sample data and write the results",
        description="Run the main job on built-in, seeded sample data and write its results "
        "(images, labels, tables, plots as PNG) to a folder. With --gui, open napari with the "
        "results as layers and the plugin's docks.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-results"), help="output folder")
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated subset of pipelines: " + ", ".join(PIPELINES),
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace the results of an earlier run"
    )
    p.add_argument("--gui", action="store_true", help="open the results in napari")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..demo import PIPELINES, check_demo, run_demo

    only = None
    if args.only is not None:
        only = [n.strip() for n in args.only.split(",") if n.strip()]
        if not only:
            from ..core.errors import ParameterError

            raise ParameterError(
                "--only", f"names no pipeline ({args.only!r}); choose from {', '.join(PIPELINES)}"
            )
    names = check_demo(args.out, only, overwrite=args.overwrite)
    for name in names:
        print(f"[{name}] {PIPELINES[name][1]}")
    layers = run_demo(args.out, names, progress=cli_progress(), overwrite=args.overwrite)
    summary = (args.out / "demo_summary.json").read_text()
    import json

    info = json.loads(summary)
    for name, entry in info["pipelines"].items():
        print(
            f"[{name}] {entry['seconds']:.1f} s, {len(entry['files'])} files in {args.out / name}"
        )
    print(f"results: {args.out.resolve()} (summary: demo_summary.json)")
    if args.gui:
        _show(layers)
    return 0


def _show(layers: dict) -> None:  # pragma: no cover - interactive
    import napari

    viewer = napari.Viewer(title="napari-interfaces demo")
    for name, items in layers.items():
        for data, kwargs, kind in items:
            kwargs = dict(kwargs)
            kwargs.setdefault("name", name)
            getattr(viewer, f"add_{kind}")(data, **kwargs)
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-interfaces")
    for w in pm.contributions.widgets or []:
        viewer.window.add_plugin_dock_widget("napari-interfaces", w.display_name)
    napari.run()
