"""``napari-interfaces demo``: run the main job on built-in data."""

from __future__ import annotations

import argparse

from ._spec import add_command, spec_from_args


def register(groups: dict) -> None:
    from ..demo import DemoOptions

    add_command(
        groups["root"],
        "demo",
        run,
        DemoOptions,
        help="run the pipelines headlessly on built-in sample data and write the results",
        description="Run the main job on built-in, seeded sample data and write its results "
        "(images, labels, tables, plots as PNG) to a folder. With --gui, open napari with the "
        "results as layers and the plugin's docks.",
    )


def run(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..demo import PIPELINES, DemoOptions, check_demo, run_demo

    opts = spec_from_args(DemoOptions, args)
    names = check_demo(opts.out, opts.pipelines(), overwrite=opts.overwrite)
    for name in names:
        print(f"[{name}] {PIPELINES[name][1]}")
    layers = run_demo(opts.out, names, progress=cli_progress(), overwrite=opts.overwrite)
    summary = (opts.out / "demo_summary.json").read_text()
    import json

    info = json.loads(summary)
    for name, entry in info["pipelines"].items():
        print(
            f"[{name}] {entry['seconds']:.1f} s, {len(entry['files'])} files in {opts.out / name}"
        )
    print(f"results: {opts.out.resolve()} (summary: demo_summary.json)")
    if opts.gui:
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
