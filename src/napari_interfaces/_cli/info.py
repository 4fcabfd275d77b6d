"""``napari-interfaces info``: versions, devices, folders."""

from __future__ import annotations

import argparse
import json


def register(groups: dict) -> None:
    p = groups["root"].add_parser(
        "info",
        help="print versions, OpenCL devices, torch device and weights folders",
        description="Print versions, the OpenCL platforms/devices found, the torch device "
        "and where weights and caches are looked up.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.sysinfo import collect, format_lines

    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print("\n".join(format_lines(info)))
    return 0
