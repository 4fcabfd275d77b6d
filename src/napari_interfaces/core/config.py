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
    "env_int",
    "file_size_limited",
    "get",
    "guard_numba_cache",
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

    For the command line only: the CLI is its own process, so it may set
    ``NUMBA_CACHE_DIR`` (to ``<cache_dir>/numba``, unless the user set it)
    before anything imports numba. Importing the package never calls this:
    a napari process keeps its own numba settings, and nothing in the
    package relies on the variable (numba falls back to ``__pycache__`` or
    its user-wide cache). When the process may not be able to write the
    cache (a file-size limit, ``ulimit -f``), a failed cache write is made
    harmless with :func:`guard_numba_cache`. Returns the folder in effect.
    """
    with _suppress():
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            guard_numba_cache()
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


def _suppress():
    import contextlib

    return contextlib.suppress(ImportError, OSError, ValueError, AttributeError)


_numba_guarded = False


def file_size_limited() -> bool:
    """Whether this process runs under a file-size limit (``ulimit -f``).

    Native compilers (the OpenCL driver's LLVM) abort the whole process with
    "LLVM ERROR: IO failure" when a write hits the limit, so callers skip
    them (the multislice ``auto`` device does) instead of crashing.
    """
    try:
        import resource

        return resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY
    except (ImportError, OSError, ValueError, AttributeError):
        return False


def guard_numba_cache() -> bool:
    """Make a failed numba cache write a warning instead of a crash.

    numba writes compiled ``cache=True`` kernels after compiling them; a
    full disk, a read-only cache or a file-size limit makes that write fail
    (an ``OSError`` from the kernel's first call). The kernel itself is
    compiled and correct, so the write failure is reported once as a
    warning and the run goes on uncached. Imports numba; returns whether
    the guard is in place.
    """
    global _numba_guarded
    if _numba_guarded:
        return True
    try:
        from numba.core import caching
    except ImportError:
        return False
    original = caching.Cache.save_overload
    warned: list[bool] = []

    def save_overload(self, sig, data):
        try:
            return original(self, sig, data)
        except OSError as exc:
            if not warned:
                import warnings

                warned.append(True)
                warnings.warn(
                    f"numba kernel cache not written ({exc.strerror or exc}); "
                    "kernels are compiled again next time",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return None

    caching.Cache.save_overload = save_overload
    _numba_guarded = True
    return True


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """An integer from the environment variable ``name`` (``default`` when unset or empty).

    Raises
    ------
    InputError
        One line naming the variable when it is not an integer >= ``minimum``.
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return int(default)
    try:
        value = int(raw.strip())
    except ValueError:
        raise InputError(f"{name}={raw!r}: expected an integer >= {minimum}") from None
    if value < minimum:
        raise InputError(f"{name}={raw!r}: expected an integer >= {minimum}")
    return value


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
