"""``napari-interfaces info``: versions, devices, folders."""

from __future__ import annotations

import argparse
import json
import platform
import sys


def register(groups: dict) -> None:
    p = groups["root"].add_parser(
        "info",
        help="print versions, OpenCL devices, torch device and weights folders",
        description="Print versions, the OpenCL platforms/devices found, the torch device "
        "and where weights and caches are looked up.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def collect() -> dict:
    """Everything ``info`` prints, as a dict."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__
    from ..core import config, opencl, weights

    versions = {}
    for pkg in ("napari", "numpy", "torch", "pyopencl", "ase", "dask", "zarr", "magicgui"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    devices, message = opencl.list_devices()
    try:
        import torch

        torch_device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_threads = torch.get_num_threads()
    except Exception as exc:  # noqa: BLE001
        torch_device, torch_threads = f"unavailable ({exc})", None
    return {
        "napari_interfaces": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "opencl": {"message": message, "devices": [str(d) for d in devices]},
        "torch_device": torch_device,
        "torch_threads": torch_threads,
        "config": config.load_config(),
        "config_file": str(config.config_file()),
        "cache_dir": str(config.cache_dir()),
        "weights_search_path": [str(p) for p in weights.weights_search_path()],
    }


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"napari-interfaces {info['napari_interfaces']} (Python {info['python']})")
    print(f"platform: {info['platform']}")
    print("versions: " + ", ".join(f"{k} {v or 'missing'}" for k, v in info["versions"].items()))
    print(f"OpenCL: {info['opencl']['message']}")
    for d in info["opencl"]["devices"]:
        print(f"  {d}")
    print(f"torch device: {info['torch_device']} ({info['torch_threads']} threads)")
    print(f"config file: {info['config_file']}")
    print(f"settings: {info['config']}")
    print(f"cache: {info['cache_dir']}")
    print("weights looked up in:")
    for p in info["weights_search_path"]:
        print(f"  {p}")
    return 0
