"""OpenCL platform and device discovery (pyopencl imported lazily).

Everything works without OpenCL: :func:`list_devices` returns an empty list
and :func:`opencl_status` says why in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeviceInfo", "list_devices", "opencl_status"]


@dataclass(frozen=True)
class DeviceInfo:
    """One OpenCL device, indexed as ``opencl:<index>``."""

    index: int
    platform: str
    name: str
    kind: str  # "CPU", "GPU", "ACCELERATOR" or "OTHER"
    global_mem_mb: int

    def __str__(self) -> str:
        return f"opencl:{self.index}  {self.kind:<4} {self.name} [{self.platform}] {self.global_mem_mb} MB"


def _kind(dev_type: int) -> str:
    import pyopencl as cl

    if dev_type & cl.device_type.GPU:
        return "GPU"
    if dev_type & cl.device_type.CPU:
        return "CPU"
    if dev_type & cl.device_type.ACCELERATOR:
        return "ACCELERATOR"
    return "OTHER"


def list_devices() -> tuple[list[DeviceInfo], str]:
    """All OpenCL devices and a one-line status message.

    Returns
    -------
    devices : list of DeviceInfo
        Empty when pyopencl is missing or no platform/driver is installed.
    message : str
        A one-line explanation, e.g. ``"no OpenCL platform found ..."``.
    """
    try:
        import pyopencl as cl
    except ImportError:  # the `opencl`/`pocl` extras; a plain install has no pyopencl
        return [], (
            "pyopencl is not installed; using the NumPy backend. For OpenCL: "
            'pip install "napari-interfaces[pocl]"'
        )
    except Exception as exc:  # a broken ICD loader
        return [], f"pyopencl unavailable ({exc}); using the NumPy backend"
    try:
        platforms = cl.get_platforms()
    except Exception as exc:  # cl.LogicError when no ICD is installed
        return [], (
            f"no OpenCL platform found ({exc}); using the NumPy backend. "
            'Install a driver, e.g. pip install "pyopencl[pocl]"'
        )
    devices: list[DeviceInfo] = []
    for platform in platforms:
        try:
            devs = platform.get_devices()
        except Exception:  # a platform without devices
            continue
        for d in devs:
            devices.append(
                DeviceInfo(
                    index=len(devices),
                    platform=platform.name.strip(),
                    name=d.name.strip(),
                    kind=_kind(d.type),
                    global_mem_mb=int(d.global_mem_size // 2**20),
                )
            )
    if not devices:
        return [], "OpenCL platforms found but no devices; using the NumPy backend"
    return devices, f"{len(devices)} OpenCL device(s) found"


def opencl_status() -> str:
    """One line describing OpenCL availability."""
    return list_devices()[1]
