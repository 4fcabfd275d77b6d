"""User configuration and cache folders.

Settings are read, in increasing priority, from built-in defaults, the user
config file ``config.yaml`` in :func:`config_dir`, and environment
variables ``NAPARI_INTERFACES_<KEY>`` (upper-case key, e.g.
``NAPARI_INTERFACES_DEVICE=numpy``). Folders follow the platform's
conventions (platformdirs) and can be moved with
``NAPARI_INTERFACES_CONFIG_DIR`` and ``NAPARI_INTERFACES_CACHE_DIR``.

Keys
----
device : str
    Compute device for the multislice engine: ``auto``, ``cpu`` (torch on
    the CPU, else NumPy), ``numpy``, ``torch``, ``cuda[:N]`` or ``opencl:N``
    (N-th OpenCL device as listed by ``napari-interfaces info``).
torch_device : str
    ``auto``, ``cpu`` or ``cuda[:N]`` for the neural networks.
weights_dir : str
    Extra folder searched for weights files (see :mod:`.weights`).
max_pixels, max_bytes : int
    Size limits checked before reading or allocating (see :mod:`.limits`);
    empty means a default from the available memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = [
    "DEFAULTS",
    "cache_dir",
    "config_dir",
    "config_file",
    "configure_numba_cache",
    "get",
    "load_config",
]

APP = "napari-interfaces"
ENV_PREFIX = "NAPARI_INTERFACES_"

DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "torch_device": "auto",
    "weights_dir": "",
    "max_pixels": "",
    "max_bytes": "",
}


def _platform_dir(kind: str) -> Path:
    import platformdirs

    fn = platformdirs.user_config_dir if kind == "config" else platformdirs.user_cache_dir
    return Path(fn(APP, appauthor=False))


def config_dir() -> Path:
    """Folder of ``config.yaml`` (``NAPARI_INTERFACES_CONFIG_DIR`` overrides)."""
    env = os.environ.get(ENV_PREFIX + "CONFIG_DIR")
    return Path(env).expanduser() if env else _platform_dir("config")


def cache_dir() -> Path:
    """Folder for caches: converted weights, compiled kernels.

    ``NAPARI_INTERFACES_CACHE_DIR`` overrides it. The folder is created on
    first use.
    """
    env = os.environ.get(ENV_PREFIX + "CACHE_DIR")
    path = Path(env).expanduser() if env else _platform_dir("cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def configure_numba_cache() -> str:
    """Point numba's on-disk cache (``cache=True`` kernels) at the user cache folder.

    Without this numba writes compiled kernels into ``__pycache__`` beside
    the installed modules (``site-packages``), where ``pip uninstall``
    leaves them behind and a read-only install cannot write at all. Sets
    ``NUMBA_CACHE_DIR`` to ``<cache_dir>/numba`` unless the user set it;
    numba reads the variable when it is first imported, so the package
    calls this on import, before any numba import (numba is not imported
    here). Returns the folder in effect.
    """
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current:
        return current
    env = os.environ.get(ENV_PREFIX + "CACHE_DIR")
    try:
        base = Path(env).expanduser() if env else _platform_dir("cache")
    except ImportError:  # platformdirs missing: leave numba's default
        return ""
    folder = str(base / "numba")
    os.environ["NUMBA_CACHE_DIR"] = folder
    return folder


def config_file() -> Path:
    """Path of the user config file (may not exist)."""
    return config_dir() / "config.yaml"


def load_config() -> dict[str, Any]:
    """Merged configuration: defaults, then the config file, then the environment.

    Raises
    ------
    InputError
        If the config file is not a YAML mapping; the message names the file.
    """
    cfg = dict(DEFAULTS)
    path = config_file()
    if path.is_file():
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML: {_first_line(exc)}") from exc
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        cfg.update(data)
    for key in list(cfg):
        env = os.environ.get(ENV_PREFIX + key.upper())
        if env is not None:
            cfg[key] = env
    return cfg


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def get(key: str, default: Any = None) -> Any:
    """One configuration value (see the module docstring for the keys)."""
    return load_config().get(key, default)
