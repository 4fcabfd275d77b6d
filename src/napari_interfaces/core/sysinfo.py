"""What ``napari-interfaces info`` and the "System info" dock report.

Versions of the main dependencies, the OpenCL platforms/devices found, the
torch device, the configuration and the folders searched for weights. One
function, :func:`collect`, used by the CLI command and the dock alike.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

__all__ = ["collect", "format_lines"]

#: Distributions whose versions are reported.
PACKAGES = ("napari", "numpy", "torch", "pyopencl", "ase", "dask", "zarr", "magicgui", "numba")


def collect() -> dict[str, Any]:
    """Everything ``info`` prints, as a JSON-serialisable dict.

    Never raises for a missing or broken optional library: a missing
    distribution's version is ``None``; a torch that fails to import gives
    ``torch_device = "unavailable (<reason>)"``.
    """
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__
    from . import config, opencl, weights

    versions: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    devices, message = opencl.list_devices()
    try:
        import torch

        torch_device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_threads = torch.get_num_threads()
    except (ImportError, OSError, RuntimeError) as exc:
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


def format_lines(info: dict[str, Any]) -> list[str]:
    """The human-readable form of :func:`collect`'s result, one string per line."""
    threads = info.get("torch_threads")
    return [
        f"napari-interfaces {info['napari_interfaces']} (Python {info['python']})",
        f"platform: {info['platform']}",
        "versions: " + ", ".join(f"{k} {v or 'missing'}" for k, v in info["versions"].items()),
        f"OpenCL: {info['opencl']['message']}",
        *[f"  {d}" for d in info["opencl"]["devices"]],
        f"torch device: {info['torch_device']}"
        + (f" ({threads} threads)" if threads is not None else ""),
        f"config file: {info['config_file']}",
        f"settings: {info['config']}",
        f"cache: {info['cache_dir']}",
        "weights looked up in:",
        *[f"  {p}" for p in info["weights_search_path"]],
    ]
