"""Compute backends for the multislice engine: NumPy/SciPy, torch and OpenCL.

One chooser, :func:`get_backend`, picks the backend from ``device``:

``"numpy"``
    NumPy arrays, ``scipy.fft`` (pocketfft) with ``workers`` threads.
``"torch"``
    torch tensors on the CPU: the FFTs go through MKL in the x86 torch
    wheels (about 1.5-3x faster than pocketfft for 256²-1024² complex64
    grids on one core), elementwise steps in place. ``"cpu"`` means this
    backend when torch imports (NumPy otherwise).
``"cuda"``, ``"cuda:N"``
    torch tensors on an NVIDIA GPU (cuFFT).
``"opencl:N"``
    pyopencl arrays on the N-th OpenCL device (``napari-interfaces info``);
    elementwise kernels (transmission, propagator) run on the device; FFTs
    run through pyvkfft when it is installed and passes the start-up
    self-test, otherwise on the host with scipy.fft (one-line notice).
``"auto"``
    Times one multislice step on a small grid for NumPy, torch (CPU and
    CUDA when present) and every OpenCL device and keeps the fastest (the
    result is cached per process and on disk). On CPUs through PoCL the host
    backends win; on GPUs CUDA or OpenCL do.

The device comes from the argument, else from the ``device`` config key
(:mod:`napari_interfaces.core.config`), else ``"auto"``. When no OpenCL
platform exists, or the FFT self-test fails (every device backend checks its
FFT against NumPy at start), the NumPy backend is used and a one-line notice
is emitted through :mod:`logging` and ``warnings``.

pyopencl caches compiled programs; the cache folder is set to
``<cache_dir>/pyopencl`` (:func:`napari_interfaces.core.config.cache_dir`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from contextlib import contextmanager

import numpy as np

from ..core.config import env_int, file_size_limited
from ..core.errors import InputError
from .transmit import Phase, phase_maps, transmit

__all__ = [
    "Backend",
    "NumpyBackend",
    "OpenCLBackend",
    "TorchBackend",
    "device_choices",
    "get_backend",
    "resolve_device",
]

log = logging.getLogger(__name__)


def _fft_workers() -> int:
    """Threads for scipy.fft: ``NAPARI_INTERFACES_FFT_WORKERS`` (a one-line error naming
    the variable when it is not a positive integer), else ``OMP_NUM_THREADS`` (set to 1
    in the batch runner's worker processes, so that N workers use N cores and not
    N x cores), else all cores."""
    if os.environ.get("NAPARI_INTERFACES_FFT_WORKERS", "").strip():
        return env_int("NAPARI_INTERFACES_FFT_WORKERS", os.cpu_count() or 2)
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        n = 0
    return n if n >= 1 else (os.cpu_count() or 2)


#: Threads for scipy.fft (pocketfft); see :func:`_fft_workers`.
FFT_WORKERS = _fft_workers()

_AUTO_CACHE: dict = {}
_BACKENDS: dict = {}
_LOCAL = threading.local()  # per-thread FFT worker limit of the NumPy backend


def notice(message: str) -> None:
    """A one-line user notice (a ``UserWarning``; the CLI prints it as one line)."""
    log.info(message)
    warnings.warn(message, UserWarning, stacklevel=3)


class Backend:
    """Interface of a compute backend (arrays live where the backend wants).

    Wave arrays are complex64 of shape ``(ny, nx)``; potentials float32.
    """

    name = "base"
    #: Whether real (float32) masks may multiply complex arrays directly.
    real_masks = False
    #: Whether slices may be prepared in other threads while the wave
    #: propagates (host backends whose kernels release the GIL).
    concurrent = False
    #: Whether several slices are better prepared in one batched call (GPUs).
    batched = False
    #: Whether potentials are made two slices at a time (:meth:`ProjectedPotential.pair`).
    pairs = False

    def threads(self) -> int:
        """Threads this backend's operations use in the calling thread."""
        return 1

    @contextmanager
    def limit_threads(self, n: int):
        """Run the body with at most ``n`` threads per operation (calling thread only)."""
        yield

    # transfers
    def asarray(self, a):  # host -> backend
        raise NotImplementedError

    def to_host(self, a) -> np.ndarray:
        raise NotImplementedError

    # FFTs (unnormalized forward, normalized inverse, like numpy)
    def fft2(self, a):
        raise NotImplementedError

    def ifft2(self, a):
        raise NotImplementedError

    def fft_self_test(self, n: int = 128) -> float:
        """Max relative error of a forward + inverse FFT against NumPy (device backends)."""
        rng = np.random.default_rng(0)
        a = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
        ref = np.fft.fft2(a.astype(np.complex128))
        got = self.to_host(self.fft2(self.asarray(a.copy())))
        err = float(np.abs(got - ref).max() / np.abs(ref).max())
        back = self.to_host(self.ifft2(self.asarray(got.astype(np.complex64))))
        return max(err, float(np.abs(back - a).max() / np.abs(a).max()))

    # real FFTs of potentials (default: scipy on the host; results are host arrays)
    def rfft2(self, a):
        """rfft2 of a real float32 array (complex64)."""
        import scipy.fft

        return scipy.fft.rfft2(np.asarray(a, np.float32), workers=FFT_WORKERS)

    def irfft2(self, a, shape: tuple[int, int]):
        """Real inverse of :meth:`rfft2` (float32, ``shape``)."""
        import scipy.fft

        return scipy.fft.irfft2(a, s=shape, workers=FFT_WORKERS).astype(np.float32, copy=False)

    def copy(self, a):
        """A copy of a backend array."""
        return a.copy()

    def zeros(self, shape, dtype: str = "complex64"):
        """Zeros (host NumPy unless the backend keeps potentials elsewhere)."""
        return np.zeros(shape, dtype)

    def add_(self, a, b):
        """``a += b`` (returns ``a``)."""
        a += b
        return a

    def real_parts(self, a):
        """``(2, ...)`` float32 view of a complex64 array: its real and imaginary parts."""
        a = np.ascontiguousarray(a, np.complex64)
        return a.view(np.float32).reshape(a.shape + (2,)).transpose(-1, *range(a.ndim))

    def index_add_(self, a, index, b):
        """``a[index] += b`` along the first axis (``index`` unique; returns ``a``)."""
        a[np.asarray(index)] += b
        return a

    def transmissions(self, v, sigma: float, mask=None):
        """Transmission functions ``exp(i sigma v)`` of a batch of slices ``v`` ``(B, ny, nx)``.

        With ``mask`` (the band limit, a backend array from :meth:`asarray`)
        each is band-limited: ``IFFT[mask FFT[exp(i sigma v)]]``. Returns
        something indexable by slice (this default: a list of backend arrays,
        one slice at a time).
        """
        t = self.phase_factors(v, sigma)
        return t if mask is None else self.bandlimit(t, mask)

    def phase_factors(self, v, sigma: float):
        """``exp(i sigma v)`` of a batch ``(B, ny, nx)`` (may overwrite ``v``; default:
        a list of backend arrays)."""
        return [self.transmission(self.asarray(v[j]), sigma) for j in range(len(v))]

    def bandlimit(self, t, mask):
        """``IFFT[mask FFT[t]]`` of each wave of a batch (as :meth:`phase_factors` gives)."""
        return [self.ifft2(self.multiply(self.fft2(t[j]), mask)) for j in range(len(t))]

    def apply_transmission(self, psi, t):
        """``psi * t`` for a transmission function ``t`` from :meth:`transmissions` (in
        place where possible)."""
        return self.multiply(psi, t)

    # fused elementwise steps
    def transmit(self, psi, v, sigma: float):
        """``psi * exp(i sigma v)`` (in place where possible)."""
        raise NotImplementedError

    def multiply(self, a, b):
        """``a * b`` in place into ``a``."""
        raise NotImplementedError

    def transmission(self, v, sigma: float):
        """``exp(i sigma v)`` (a new array)."""
        return self.transmit(self.ones(np.shape(v)), v, sigma)

    def ones(self, shape):
        raise NotImplementedError

    def synchronize(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class NumpyBackend(Backend):
    """NumPy arrays and ``scipy.fft`` (pocketfft) with ``workers`` threads."""

    name = "numpy"
    real_masks = True
    concurrent = True
    pairs = True

    def __init__(self, workers: int | None = None) -> None:
        self._workers = workers or FFT_WORKERS

    @property
    def workers(self) -> int:
        """scipy.fft workers: the backend's, or the calling thread's limit."""
        return getattr(_LOCAL, "workers", None) or self._workers

    def threads(self) -> int:
        return self.workers

    @contextmanager
    def limit_threads(self, n: int):
        prev = getattr(_LOCAL, "workers", None)
        _LOCAL.workers = max(1, int(n))
        try:
            yield
        finally:
            _LOCAL.workers = prev

    def asarray(self, a):
        return np.asarray(a)

    def to_host(self, a) -> np.ndarray:
        return np.asarray(a)

    def fft2(self, a):
        import scipy.fft

        return scipy.fft.fft2(a, workers=self.workers, overwrite_x=True)

    def ifft2(self, a):
        import scipy.fft

        return scipy.fft.ifft2(a, workers=self.workers, overwrite_x=True)

    def transmit(self, psi, v, sigma: float):
        psi *= self.transmission(v, sigma)
        return psi

    def rfft2(self, a):
        import scipy.fft

        return scipy.fft.rfft2(np.asarray(a, np.float32), workers=self.workers)

    def irfft2(self, a, shape: tuple[int, int]):
        import scipy.fft

        out = scipy.fft.irfft2(a, s=shape, workers=self.workers, overwrite_x=True)
        return out.astype(np.float32, copy=False)

    def phase_factors(self, v, sigma: float):
        return self.transmission(v, sigma)

    def transmissions(self, v, sigma: float, mask=None):
        """Without a band limit, the potentials themselves (:mod:`.transmit`: the wave
        is multiplied by ``exp(i sigma v)`` in one compiled pass)."""
        maps = phase_maps(v, sigma) if mask is None else None
        return maps if maps is not None else super().transmissions(v, sigma, mask)

    def apply_transmission(self, psi, t):
        if isinstance(t, Phase):
            psi = np.ascontiguousarray(psi, np.complex64)
            transmit(psi, t)
            return psi
        return self.multiply(psi, t)

    def bandlimit(self, t, mask):
        """One slice at a time (a batched FFT leaves the cache: slower per slice)."""
        import scipy.fft

        w = self.workers
        out = []
        for j in range(len(t)):
            f = scipy.fft.fft2(t[j], workers=w, overwrite_x=True)
            f *= mask
            out.append(scipy.fft.ifft2(f, workers=w, overwrite_x=True))
        return out

    def transmission(self, v, sigma: float):
        """``exp(i sigma v)`` as complex64 (cos/sin written straight into the parts)."""
        phase = np.multiply(np.asarray(v, dtype=np.float32), np.float32(sigma))
        t = np.empty(phase.shape, np.complex64)
        np.cos(phase, out=t.real)
        np.sin(phase, out=t.imag)
        return t

    def multiply(self, a, b):
        a *= b
        return a

    def ones(self, shape):
        return np.ones(shape, np.complex64)


class TorchBackend(Backend):
    """torch tensors on the CPU (MKL FFTs) or a CUDA GPU (cuFFT).

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"``/``"cuda:N"``.

    Raises
    ------
    RuntimeError
        When the FFT self-test against NumPy fails (the caller falls back).
    """

    def __init__(self, device: str = "cpu") -> None:
        import torch

        from ..nets.device import resolve_device  # the one torch-device resolver

        self.torch = torch
        self.device = resolve_device(device)
        if self.device.type == "cuda":
            idx = self.device.index or 0
            self.device = torch.device("cuda", idx)
            self.name = f"cuda:{idx}"
            self.batched = True
        else:
            self.name = "torch"
            self.concurrent = self.pairs = True
        err = self.fft_self_test()
        if not err < 1e-4:
            raise RuntimeError(f"{self.name}: FFT self-test failed (relative error {err:.1e})")

    def asarray(self, a):
        torch = self.torch
        if isinstance(a, torch.Tensor):
            return a.to(self.device)
        a = np.asarray(a)
        if a.dtype == np.complex128:
            a = a.astype(np.complex64)
        elif a.dtype == np.float64:
            a = a.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def to_host(self, a) -> np.ndarray:
        if isinstance(a, self.torch.Tensor):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    # (out= the input tensor is ~4x slower on the CPU than a new tensor)
    def fft2(self, a):
        return self.torch.fft.fft2(a)

    def ifft2(self, a):
        return self.torch.fft.ifft2(a)

    def rfft2(self, a):
        return self.torch.fft.rfft2(self.asarray(a))

    def irfft2(self, a, shape: tuple[int, int]):
        return self.torch.fft.irfft2(a, s=tuple(shape))

    def copy(self, a):
        return a.clone()

    def transmission(self, v, sigma: float):
        torch = self.torch
        phase = self.asarray(v).to(torch.float32) * float(sigma)
        return torch.complex(torch.cos(phase), torch.sin(phase))

    def transmit(self, psi, v, sigma: float):
        return psi.mul_(self.transmission(v, sigma))

    def threads(self) -> int:
        return self.torch.get_num_threads() if self.device.type == "cpu" else 1

    @contextmanager
    def limit_threads(self, n: int):
        """torch's intra-op threads of the calling thread (restored afterwards)."""
        if self.device.type != "cpu":
            yield
            return
        torch = self.torch
        prev = torch.get_num_threads()
        torch.set_num_threads(max(1, int(n)))
        try:
            yield
        finally:
            torch.set_num_threads(prev)

    def zeros(self, shape, dtype: str = "complex64"):
        return self.torch.zeros(tuple(shape), dtype=getattr(self.torch, dtype), device=self.device)

    def real_parts(self, a):
        return self.torch.view_as_real(a).permute(2, 0, 1)

    def index_add_(self, a, index, b):
        idx = self.torch.as_tensor(np.asarray(index), dtype=self.torch.long, device=self.device)
        return a.index_add_(0, idx, b)

    def phase_factors(self, v, sigma: float):
        """Batched ``exp(i sigma v)``, cos and sin written straight into the parts."""
        torch = self.torch
        if isinstance(v, torch.Tensor) and v.dtype == torch.float32:
            phase = v.mul_(float(sigma))  # v is a scratch batch (the caller's own)
        else:
            phase = self.asarray(v).to(torch.float32) * float(sigma)
        # contiguous cos and sin, then one interleaving pass: faster than writing
        # into the strided real/imaginary views (which defeats vectorization)
        return torch.complex(torch.cos(phase), torch.sin(phase))

    def transmissions(self, v, sigma: float, mask=None):
        """On the CPU without a band limit, the potentials themselves (:mod:`.transmit`:
        the wave is multiplied by ``exp(i sigma v)`` in one compiled pass)."""
        maps = None
        if mask is None and self.device.type == "cpu":
            maps = phase_maps(self.to_host(v), sigma)
        return maps if maps is not None else super().transmissions(v, sigma, mask)

    def apply_transmission(self, psi, t):
        if isinstance(t, Phase):
            psi = psi.contiguous()
            transmit(psi.numpy(), t)  # the tensor's own memory
            return psi
        return self.multiply(psi, t)

    def bandlimit(self, t, mask):
        """FFT pair, mask applied in place: batched on a GPU, one slice at a time on
        the CPU (a batched FFT over several large grids leaves the cache)."""
        fft = self.torch.fft
        if self.batched:
            return fft.ifft2(fft.fft2(t).mul_(mask))
        return [fft.ifft2(fft.fft2(t[j]).mul_(mask)) for j in range(len(t))]

    def multiply(self, a, b):
        return a.mul_(self.asarray(b))

    def ones(self, shape):
        return self.torch.ones(tuple(shape), dtype=self.torch.complex64, device=self.device)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)


_KERNELS = r"""
#include <pyopencl-complex.h>
__kernel void transmit(__global cfloat_t *psi, __global const float *v, const float sigma)
{
    int i = get_global_id(0);
    float s, c;
    s = sincos(sigma * v[i], &c);
    cfloat_t p = psi[i];
    psi[i] = cfloat_new(p.real * c - p.imag * s, p.real * s + p.imag * c);
}
__kernel void cmul(__global cfloat_t *a, __global const cfloat_t *b)
{
    int i = get_global_id(0);
    a[i] = cfloat_mul(a[i], b[i]);
}
"""


def _set_pyopencl_cache() -> None:
    if "PYOPENCL_CACHE_DIR" in os.environ:
        return
    try:
        from ..core.config import cache_dir

        path = cache_dir() / "pyopencl"
        path.mkdir(parents=True, exist_ok=True)
        os.environ["PYOPENCL_CACHE_DIR"] = str(path)
    except Exception:  # caching is an optimisation only
        pass


class OpenCLBackend(Backend):
    """pyopencl arrays on one OpenCL device.

    Parameters
    ----------
    index : int
        Device index as listed by :func:`napari_interfaces.core.opencl.list_devices`.
    fft : {"auto", "vkfft", "host"}
        FFT implementation: pyvkfft on the device, or scipy.fft on the host
        (with transfers). ``"auto"`` uses pyvkfft when importable and it
        passes the self-test.
    """

    def __init__(self, index: int = 0, fft: str = "auto") -> None:
        _set_pyopencl_cache()
        import pyopencl as cl
        import pyopencl.array  # noqa: F401

        devices = []
        for platform in cl.get_platforms():
            try:
                devices.extend(platform.get_devices())
            except Exception:
                continue
        if not 0 <= index < len(devices):
            raise InputError(
                f"opencl:{index} does not exist ({len(devices)} OpenCL device(s) found; "
                "see napari-interfaces info)"
            )
        self.device = devices[index]
        self.index = index
        self.name = f"opencl:{index}"
        self.ctx = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.ctx)
        t0 = time.perf_counter()
        self.program = cl.Program(self.ctx, _KERNELS).build()
        self.compile_seconds = time.perf_counter() - t0
        self._transmit = self.program.transmit
        self._cmul = self.program.cmul
        self.fft_mode = "host"
        self._vkfft_apps: dict = {}
        if fft in ("auto", "vkfft"):
            try:
                import pyvkfft.opencl  # noqa: F401

                self.fft_mode = "vkfft"
                err = self.fft_self_test()
                if err > 1e-4:
                    notice(
                        f"OpenCL FFT self-test failed on {self.device.name.strip()} "
                        f"(relative error {err:.1e} vs numpy); using host FFTs"
                    )
                    self.fft_mode = "host"
            except ImportError:
                if fft == "vkfft":
                    notice("pyvkfft is not installed; OpenCL backend uses host FFTs")
            except Exception as exc:
                notice(f"pyvkfft failed on {self.device.name.strip()} ({exc}); using host FFTs")
                self.fft_mode = "host"
        self._host = NumpyBackend()

    def asarray(self, a):
        import pyopencl.array as cla

        if isinstance(a, cla.Array):
            return a
        return cla.to_device(self.queue, np.ascontiguousarray(a))

    def to_host(self, a) -> np.ndarray:
        import pyopencl.array as cla

        if isinstance(a, cla.Array):
            return a.get()
        return np.asarray(a)

    def _vkfft(self, a):
        from pyvkfft.opencl import VkFFTApp

        key = (a.shape, a.dtype.str)
        app = self._vkfft_apps.get(key)
        if app is None:
            app = VkFFTApp(a.shape, a.dtype, queue=self.queue, ndim=2, inplace=True, norm=1)
            self._vkfft_apps[key] = app
        return app

    def fft2(self, a):
        if self.fft_mode == "vkfft":
            self._vkfft(a).fft(a)
            return a
        return self.asarray(self._host.fft2(self.to_host(a)))

    def ifft2(self, a):
        if self.fft_mode == "vkfft":
            self._vkfft(a).ifft(a)
            return a
        return self.asarray(self._host.ifft2(self.to_host(a)))

    def transmit(self, psi, v, sigma: float):
        v = self.asarray(np.asarray(v, np.float32) if isinstance(v, np.ndarray) else v)
        self._transmit(self.queue, (psi.size,), None, psi.data, v.data, np.float32(sigma))
        return psi

    def multiply(self, a, b):
        b = self.asarray(b)
        self._cmul(self.queue, (a.size,), None, a.data, b.data)
        return a

    def ones(self, shape):
        import pyopencl.array as cla

        out = cla.empty(self.queue, shape, np.complex64)
        out.fill(np.complex64(1.0))
        return out

    def synchronize(self) -> None:
        self.queue.finish()


def _torch_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def resolve_device(device: str | None = None) -> str:
    """The device string to use: the argument, else config ``device``, else ``auto``.

    Canonical names: ``auto``, ``numpy``, ``torch`` (torch on the CPU),
    ``cuda:N``, ``opencl:N``. ``cpu`` becomes ``torch`` when torch is
    installed, else ``numpy``; ``cuda`` and ``torch:cuda`` become ``cuda:0``.
    """
    if device is None or device == "":
        try:
            from ..core.config import get

            device = get("device", "auto") or "auto"
        except Exception:
            device = "auto"
    device = str(device).strip().lower()
    usage = "use auto, cpu, numpy, torch, cuda[:N] or opencl:N"
    if device in ("auto", "numpy", "torch", "torch:cpu"):
        return "torch" if device == "torch:cpu" else device
    if device == "cpu":
        return "torch" if _torch_importable() else "numpy"
    if device.startswith("torch:"):
        device = device.split(":", 1)[1]
    for prefix in ("cuda", "opencl"):
        if device.startswith(prefix):
            idx = device.split(":", 1)[1] if ":" in device else "0"
            if device[len(prefix) :] not in ("", f":{idx}") or not idx.isdigit():
                raise InputError(f"bad device {device!r}: {usage}")
            return f"{prefix}:{int(idx)}"
    raise InputError(f"bad device {device!r}: {usage}")


def device_choices(*, import_torch: bool = False) -> list[str]:
    """The device names a user can pick here (a dock's list), each one :func:`get_backend` takes.

    ``cpu``, ``numpy`` and ``auto``, then each CUDA GPU (``cuda:N``) and each
    OpenCL device (``opencl:N``). A broken CUDA or OpenCL setup lists no
    devices of its kind instead of raising.

    Parameters
    ----------
    import_torch : bool
        False (default): CUDA GPUs are listed only if torch is already
        imported, so that building a form costs no multi-second import.
    """
    import sys

    out = ["cpu", "numpy", "auto"]
    torch = sys.modules.get("torch")
    if torch is None and import_torch and _torch_importable():
        import torch
    try:
        if torch is not None and torch.cuda.is_available():
            out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception as exc:  # a broken CUDA setup: CPU choices only
        log.info("CUDA devices not listed: %s", exc)
    try:
        from ..core.opencl import list_devices

        out += [f"opencl:{d.index}" for d in list_devices()[0]]
    except Exception as exc:  # no OpenCL runtime
        log.info("OpenCL devices not listed: %s", exc)
    return out


def _opencl_or_fallback(index: int) -> Backend:
    from ..core.opencl import list_devices

    devices, message = list_devices()
    if not devices:
        notice(f"{message}")
        return NumpyBackend()
    if file_size_limited():  # the OpenCL compiler aborts the process on EFBIG
        notice("a file-size limit (ulimit -f) is set: OpenCL kernels cannot be compiled "
               "safely; using the NumPy backend")  # fmt: skip
        return NumpyBackend()
    try:
        return OpenCLBackend(index)
    except ValueError:
        raise
    except Exception as exc:  # build failures, driver errors
        notice(f"OpenCL device opencl:{index} unusable ({exc}); using the NumPy backend")
        return NumpyBackend()


def _torch_or_fallback(device: str) -> Backend:
    try:
        return TorchBackend(device)
    except ValueError:
        raise
    except Exception as exc:  # import errors, failed self-test
        notice(f"torch backend {device} unusable ({exc}); using the NumPy backend")
        return NumpyBackend()


def _time_step(backend: Backend, n: int = 256, repeat: int = 3) -> float:
    rng = np.random.default_rng(0)
    v = rng.random((n, n), dtype=np.float32) * 10
    prop = np.exp(1j * rng.random((n, n))).astype(np.complex64)
    psi = backend.ones((n, n))
    pv = backend.asarray(v)
    pp = backend.asarray(prop)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        psi = backend.transmit(psi, pv, 1e-3)
        psi = backend.fft2(psi)
        psi = backend.multiply(psi, pp)
        psi = backend.ifft2(psi)
        backend.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def get_backend(device: str | None = None) -> Backend:
    """Backend for ``device`` (``auto``, ``cpu``, ``numpy``, ``torch``, ``cuda:N``,
    ``opencl:N``; see the module doc).

    Backends are created once per process and reused (compiled kernels are
    kept). ``auto`` measures and picks the fastest and remembers the choice in ``<cache_dir>/hrtem_auto_device.json`` for
    the same set of OpenCL devices (delete it to measure again).
    """
    dev = resolve_device(device)
    if dev in _BACKENDS:
        return _BACKENDS[dev]
    if dev == "numpy":
        backend: Backend = NumpyBackend()
    elif dev == "torch":
        backend = _torch_or_fallback("cpu")
    elif dev.startswith("cuda:"):
        backend = _torch_or_fallback(dev)
    elif dev.startswith("opencl:"):
        backend = _opencl_or_fallback(int(dev.split(":")[1]))
    else:  # auto
        backend = _choose_auto()
    _BACKENDS[dev] = backend
    return backend


def _auto_cache_file():
    try:
        from ..core.config import cache_dir

        return cache_dir() / "hrtem_auto_device.json"
    except Exception:
        return None


def _choose_auto() -> Backend:
    """Fastest backend; the choice is remembered per set of devices on disk."""
    import json

    from ..core.opencl import list_devices

    devices, _ = list_devices()
    key = "|".join(f"{d.index}:{d.platform}:{d.name}" for d in devices) or "none"
    key += "|torch:" + "+".join(_torch_devices())
    path = _auto_cache_file()
    if path is not None and path.is_file():
        try:
            saved = json.loads(path.read_text())
            if saved.get("key") == key:
                _AUTO_CACHE.update(saved.get("timings", {}))
                choice = saved["choice"]
                if choice == "numpy":
                    return NumpyBackend()
                if choice == "torch" or choice.startswith("cuda:"):
                    return TorchBackend("cpu" if choice == "torch" else choice)
                if not file_size_limited():  # else measured again without OpenCL
                    return OpenCLBackend(int(choice.split(":")[1]))
        except Exception as exc:  # stale or broken cache: measure again
            log.info("auto-device cache ignored: %s", exc)
    best = _measure_auto(devices)
    if path is not None and not file_size_limited():
        try:
            path.write_text(json.dumps({"key": key, "choice": best.name, "timings": _AUTO_CACHE}))
        except OSError:
            pass
    return best


def _torch_devices() -> list[str]:
    """torch devices ``auto`` considers: ``cpu`` and each CUDA GPU (none without torch)."""
    if not _torch_importable():
        return []
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu"] + [f"cuda:{i}" for i in range(n)]


def _measure_auto(devices) -> Backend:
    candidates: list[Backend] = [NumpyBackend()]
    for dev in _torch_devices():
        try:
            candidates.append(TorchBackend(dev))
        except Exception as exc:
            log.info("torch %s skipped: %s", dev, exc)
    for d in [] if file_size_limited() else devices:  # compiler aborts on EFBIG
        try:
            candidates.append(OpenCLBackend(d.index))
        except Exception as exc:
            log.info("opencl:%d skipped: %s", d.index, exc)
    best, best_t = candidates[0], np.inf
    for b in candidates:
        try:
            t = _time_step(b)
        except Exception as exc:
            log.info("%s failed the timing step: %s", b.name, exc)
            continue
        _AUTO_CACHE[b.name] = t
        if t < best_t:
            best, best_t = b, t
    log.info("auto device: %s (%s)", best.name, _AUTO_CACHE)
    return best
