"""Plane-wave multislice (Kirkland 2010, ch. 6).

For each slice ``n`` of thickness ``dz_n`` (the default, "propagator" band-limit scheme)::

    t_n      = exp(i sigma v_n)                            transmission
    psi_n+1  = IFFT[ P_dz(k) BL(k) FFT[ t_n psi_n ] ]      Fresnel propagation

with the Fresnel propagator ``P_dz(k) = exp(-i pi lambda dz k^2)`` and the
anti-aliasing band limit ``BL(k) = 1 for |k| <= 2/3 k_Nyquist`` (a hard
circular aperture, Kirkland sect. 6.8) applied to the propagated wave, so
transmission and propagation share one FFT pair per slice. The textbook
scheme of Kirkland and abTEM band-limits the transmission function too,
``t_n = BL[exp(i sigma v_n)]`` (one more FFT pair per slice; set
``NAPARI_INTERFACES_MULTISLICE_BANDLIMIT=transmission``); it drops the
scattering of ``t``'s components beyond the band back into it, so at a
given sampling the default lies closer to a converged wave (issue 27,
docs/benchmarks.md). Either way ``|t| = 1`` before the aperture, and
intensity never grows. Empty (vacuum) slices are merged into one
propagation. The incident wave is a plane wave of unit intensity; the exit
wave therefore has mean intensity <= 1 (equality in vacuum).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..core.errors import InputError
from ..core.geometry import Grid
from .constants import interaction_parameter, wavelength
from .potential import PeriodicGrid, ProjectedPotential, pixel_grid

__all__ = [
    "ExitWaves",
    "bandlimit_mask",
    "bandlimit_scheme",
    "bandlimit_transmission_default",
    "fresnel_propagator",
    "multislice",
    "using_bandlimit_scheme",
]

#: Environment variable choosing the band-limit scheme: ``propagator`` (default) or
#: ``transmission`` (band-limit ``exp(i sigma v)`` too, as Kirkland and abTEM do).
BANDLIMIT_ENV = "NAPARI_INTERFACES_MULTISLICE_BANDLIMIT"


@dataclass
class ExitWaves:
    """Exit waves of one structure: what :func:`multislice` and
    :func:`.hrtem.simulate_exit_waves` return.

    Attributes
    ----------
    waves : complex64 array ``(n_configs, ny, nx)``
        One exit wave per frozen-phonon configuration (``n_configs = 1``
        for a single multislice pass).
    sampling : (dx, dy)
        Pixel size in Å along x (columns) and y (rows).
    energy_kv : float
    timings : dict
        Seconds per stage (``potential``, ``multislice``, ...).
    backend : str
    branch_waves : complex64 array ``(n_configs, ny, nx)`` or None
        With ``branch``: the masked atoms' own exit waves (see
        :func:`multislice`); ``None`` otherwise.
    """

    waves: np.ndarray
    sampling: tuple[float, float]
    energy_kv: float
    timings: dict = field(default_factory=dict)
    backend: str = "numpy"
    branch_waves: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of one wave."""
        return self.waves.shape[-2:]

    @property
    def grid(self) -> Grid:
        """The waves' pixel grid (axes ``yx``, Å) as a :class:`~napari_interfaces.core.geometry.Grid`."""
        return pixel_grid(self.sampling)


@lru_cache(maxsize=16)
def bandlimit_mask(grid: PeriodicGrid, fraction: float = 2.0 / 3.0) -> np.ndarray:
    """1 inside ``|k| <= fraction * k_Nyquist`` (smallest Nyquist), else 0; float32.

    Cached per grid: treat the result as read-only.
    """
    kmax = fraction * grid.nyquist
    return (grid.k2() <= kmax**2).astype(np.float32)


@lru_cache(maxsize=32)
def fresnel_propagator(grid: PeriodicGrid, dz: float, energy_kv: float, bandlimit: bool = True):
    """``exp(-i pi lambda dz k^2)`` (times the band limit), complex64 ``(ny, nx)``.

    Cached per (grid, dz, energy): treat the result as read-only.
    """
    lam = wavelength(energy_kv)
    p = np.exp(-1j * np.pi * lam * dz * grid.k2())
    if bandlimit:
        p = p * bandlimit_mask(grid)
    return p.astype(np.complex64)


def bandlimit_transmission_default() -> bool:
    """Whether :func:`multislice` band-limits ``exp(i sigma v)`` by default.

    ``NAPARI_INTERFACES_MULTISLICE_BANDLIMIT``: ``propagator`` (default: only
    the propagated wave is band-limited, so transmission and propagation
    share one FFT pair per slice) or ``transmission`` (the textbook scheme of
    Kirkland and abTEM: ``t = BL[exp(i sigma v)]``, one more FFT pair per
    slice). ``propagator`` keeps the scattering of ``t``'s components beyond
    the band back into it, which the textbook scheme drops: on the issue-27
    scene (1024² at 0.1 Å) its exit wave lies *closer* to converged 0.05 Å
    waves (ours: rms 0.031 vs 0.049; abTEM's: phase correlation 0.991 vs
    0.980) and takes about 0.65 of the time, but lies further from abTEM at
    the same 0.1 Å, which band-limits ``t`` (phase correlation 0.963 vs
    0.986; docs/benchmarks.md). ``transmission`` reproduces databases made
    before the default changed (2026-12-07). Any other value is a one-line
    error.
    """
    value = os.environ.get(BANDLIMIT_ENV, "").strip().lower() or "propagator"
    if value not in ("transmission", "propagator"):
        raise InputError(
            f"{BANDLIMIT_ENV}={value!r}: use 'propagator' (default) or 'transmission'"
        )
    return value == "transmission"


def bandlimit_scheme() -> str:
    """The band-limit scheme in force: ``"propagator"`` or ``"transmission"``."""
    return "transmission" if bandlimit_transmission_default() else "propagator"


@contextmanager
def using_bandlimit_scheme(scheme: str | None):
    """Run the body under band-limit ``scheme`` (``None``: as the environment says).

    Sets ``NAPARI_INTERFACES_MULTISLICE_BANDLIMIT`` for the process and restores
    it afterwards (a database task carries its store's scheme to workers whose
    environment may differ).
    """
    old = os.environ.get(BANDLIMIT_ENV)
    if scheme is None or old == scheme:
        yield
        return
    os.environ[BANDLIMIT_ENV] = scheme
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(BANDLIMIT_ENV, None)
        else:
            os.environ[BANDLIMIT_ENV] = old


def multislice(
    potential: ProjectedPotential,
    energy_kv: float,
    backend=None,
    positions: np.ndarray | None = None,
    bandlimit_transmission: bool | None = None,
    progress=None,
    timings: dict | None = None,
    trailing_vacuum: bool = True,
    branch: np.ndarray | None = None,
) -> ExitWaves:
    """Exit wave of a unit plane wave, as :class:`ExitWaves` with one wave.

    With ``branch`` (a boolean mask over the atoms) ``branch_waves`` holds
    the exit wave of the masked atoms alone at the exit surface of their last slice (as
    ``trailing_vacuum=False`` would give for a structure holding only them).
    Slices holding only masked atoms (or none) are shared: the two waves are
    identical until the first slice with an unmasked atom, so when the
    particles lie on the beam-entrance side of the substrate their exit wave
    (the labels) costs only the slices where both meet.

    Parameters
    ----------
    potential : ProjectedPotential
    energy_kv : float
    backend : Backend, optional
        From :func:`.backends.get_backend` (NumPy when omitted).
    positions : (N, 3) array, optional
        Displaced positions (frozen phonons) replacing ``potential.positions``;
        atoms stay in the slices of their undisplaced centres.
    bandlimit_transmission : bool, optional
        Band-limit ``exp(i sigma v)`` too (one more FFT pair per slice;
        Kirkland's and abTEM's scheme). Without it (the default) the
        propagator alone band-limits: one FFT pair per slice for transmission
        and propagation together, about 0.65 of the time and closer to a
        converged wave (see :func:`bandlimit_transmission_default`). ``None``:
        :func:`bandlimit_transmission_default`.
    progress : Progress, optional
        Advanced once per slice.
    timings : dict, optional
        Seconds spent per stage are added under ``"potential"`` and
        ``"multislice"``.
    trailing_vacuum : bool
        Propagate through the empty slices after the last atom (the exit
        plane is the cell's bottom). ``False`` returns the wave at the exit
        surface of the last non-empty slice (used for exit-wave labels).
    branch : (N,) bool array, optional
        See above.
    """
    from ..core.progress import as_progress
    from .backends import get_backend

    progress = as_progress(progress)
    backend = backend or get_backend("numpy")
    grid = potential.grid
    sigma = interaction_parameter(energy_kv)
    if bandlimit_transmission is None:
        bandlimit_transmission = bandlimit_transmission_default()
    mask = bandlimit_mask(grid)  # float32
    mask = backend.asarray(mask if backend.real_masks else mask.astype(np.complex64))
    tmask = mask if bandlimit_transmission else None
    props: dict[float, object] = {}

    def prop(dz: float):
        key = round(dz, 9)
        if key not in props:
            props[key] = backend.asarray(fresnel_propagator(grid, key, float(energy_kv)))
        return props[key]

    def step(psi, t, dz: float, pending: float):
        """Vacuum propagation of ``pending`` Å, transmission ``t``, propagation by dz."""
        if pending > 0:
            psi = backend.ifft2(backend.multiply(backend.fft2(psi), prop(pending)))
        psi = backend.apply_transmission(psi, t)
        return backend.ifft2(backend.multiply(backend.fft2(psi), prop(dz)))

    ns = potential.num_slices
    dzs = potential.thicknesses
    counts = np.array([len(potential.atoms_in_slice(i)) for i in range(ns)])
    occupied = np.flatnonzero(counts)
    last_b = -1
    if branch is not None:
        branch = np.asarray(branch, bool)
        if branch.shape != potential.numbers.shape:
            raise ValueError("branch must be a boolean mask over the atoms")
        in_branch = [bool(branch[potential.atoms_in_slice(i)].any()) for i in range(ns)]
        last_b = max((i for i, b in enumerate(in_branch) if b), default=-1)
    # Propagation after each occupied slice, merged with the empty slices that
    # follow it (one FFT pair instead of two); the plane wave before the first
    # atoms is unchanged by vacuum (only k = 0), so leading empty slices are skipped.
    after: dict[int, float] = {}
    absorbed = np.zeros(ns, bool)
    absorbed[: occupied[0] if len(occupied) else ns] = True
    for k, i in enumerate(occupied):
        nxt = int(occupied[k + 1]) if k + 1 < len(occupied) else ns
        d = float(dzs[i])
        if i != last_b and (nxt < ns or trailing_vacuum):
            d += float(dzs[i + 1 : nxt].sum())
            absorbed[i + 1 : nxt] = True
        after[int(i)] = d
    # Transmission functions are built in batches of slices (batched FFTs) by
    # helper threads while the wave propagates; see _Transmissions.
    maker = _Transmissions(potential, positions, backend, sigma, tmask, occupied)
    threads = None if maker.parallel else threads_for_load(backend)
    try:
        with maker, backend.limit_threads(threads or backend.threads()):
            return _run(potential, backend, maker, step, prop, counts, absorbed, after,
                        branch, last_b, energy_kv, trailing_vacuum, progress,
                        timings)  # fmt: skip
    finally:
        maker.close()


#: Environment variable: threads of the multislice on host backends (``auto``: see
#: :func:`threads_for_load`).
THREADS_ENV = "NAPARI_INTERFACES_MULTISLICE_THREADS"


def threads_for_load(backend) -> int | None:
    """Threads for one multislice on a host backend, or ``None`` for the backend's own.

    ``NAPARI_INTERFACES_MULTISLICE_THREADS`` (a positive integer) forces a
    count. Otherwise (``auto``) one thread when the machine is oversubscribed
    (1-minute load average >= cores + 1): intra-op FFT threads then wait for
    each other whenever one is descheduled (issue-27 full case, load ~7 on 2
    cores: 2.2-3.5 s with one thread against 5.4-7.8 s with two), while on a
    quiet machine two threads are faster. Only host backends with more than
    one thread are affected.
    """
    from ..core.config import env_int

    if not backend.concurrent or backend.threads() <= 1:
        return None
    raw = os.environ.get(THREADS_ENV, "").strip().lower()
    if raw not in ("", "auto"):
        return env_int(THREADS_ENV, 1)
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average on this platform
        return None
    return 1 if load >= (os.cpu_count() or 1) + 1 else None


class _Transmissions:
    """Band-limited transmission functions of the occupied slices, in slice order.

    Slices are prepared in batches (one deposit pass and batched FFTs per
    batch). On host backends with more than one thread (``backend.threads()``)
    and ``NAPARI_INTERFACES_MULTISLICE_HELPERS=1`` (for machines whose cores
    other jobs share), ``helpers`` threads prepare the next batches while the calling thread
    propagates, every operation single-threaded: threads never wait on one
    another inside an FFT (intra-op parallelism stalls when other jobs share
    the cores), and the potential work leaves the propagation's critical path.
    With one thread (e.g. a batch worker with ``OMP_NUM_THREADS=1``) or on a
    GPU the batches are made in the calling thread when needed.
    """

    def __init__(self, potential, positions, backend, sigma, mask, occupied) -> None:
        self.potential, self.positions, self.backend = potential, positions, backend
        self.sigma, self.mask = sigma, mask
        shape = potential.grid.shape
        budget = backend.threads() if backend.concurrent else 1
        # Helper threads win only when other jobs share the cores (intra-op FFT
        # threads then stall); on a quiet 2-core machine the calling thread with
        # the backend's own threads is faster (1.01 s vs 1.23 s for the 1024²,
        # 52-slice benchmark, 2026-12-07). Opt in with
        # NAPARI_INTERFACES_MULTISLICE_HELPERS=1.
        helpers_on = os.environ.get("NAPARI_INTERFACES_MULTISLICE_HELPERS", "") == "1"
        self.parallel = helpers_on and budget > 1 and len(occupied) > 1
        # helpers prepare batches; the caller keeps the remaining threads for the
        # propagation (at least one: with 2 cores, 2 helpers + 1 propagating)
        self.helpers = budget if budget <= 3 else budget // 2
        self.main_threads = 1 if budget <= 3 else budget - self.helpers
        # On the CPU one slice at a time: a batched FFT over several slices costs
        # more per slice (the working set leaves the cache; measured). On a GPU
        # batches amortize the kernel launches.
        # Host backends take two slices at a time: their potentials come from one
        # complex FFT pair (ProjectedPotential.pair).
        per = 2**25 if backend.batched else 1
        self.size = max(2 if backend.pairs else 1, min(16, per // (8 * shape[0] * shape[1])))
        self.chunks = [
            [int(j) for j in occupied[k : k + self.size]]
            for k in range(0, len(occupied), self.size)
        ]
        self.where = {i: n for n, c in enumerate(self.chunks) for i in c}
        self.current, self.slot, self.T = -1, {}, None
        self.pool = None
        self.futures: dict = {}
        self._ctx = None

    def make(self, chunk, select=None, threads: int | None = None):
        """Transmission functions of the slices ``chunk`` (indexable by position)."""
        b = self.backend
        if threads is None:
            return self._make(chunk, select)
        with b.limit_threads(threads):
            return self._make(chunk, select)

    def _make(self, chunk, select):
        b, pot = self.backend, self.potential
        if len(chunk) == 2 and b.pairs:
            v = pot.pair(chunk, self.positions, b, select)
        else:
            v = pot.batch(chunk, self.positions, b, select)
        return b.transmissions(v, self.sigma, self.mask)

    def __enter__(self):
        if self.parallel:
            from concurrent.futures import ThreadPoolExecutor

            self._ctx = self.backend.limit_threads(self.main_threads)
            self._ctx.__enter__()
            self.pool = ThreadPoolExecutor(self.helpers, thread_name_prefix="multislice")
            self._submit_upto(self.helpers)
        return self

    def _submit_upto(self, last: int) -> None:
        for n in range(last + 1):
            if n < len(self.chunks) and n not in self.futures and n > self.current:
                self.futures[n] = self.pool.submit(self.make, self.chunks[n], None, 1)

    def __call__(self, i: int):
        """Transmission function of occupied slice ``i`` (slices asked in order)."""
        if i not in self.slot:
            n = self.where[i]
            self.T = None  # free the previous batch first
            if self.pool is None:
                self.T = self.make(self.chunks[n])
            else:
                self._submit_upto(n + self.helpers)  # keep the helpers busy
                self.T = self.futures.pop(n).result()
            self.current = n
            self.slot = {j: k for k, j in enumerate(self.chunks[n])}
        return self.T[self.slot[i]]

    def close(self) -> None:
        self.T = None
        if self.pool is not None:
            for f in self.futures.values():
                f.cancel()
            self.pool.shutdown(wait=True)
            self.pool = None
            self.futures.clear()
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            ctx.__exit__(None, None, None)

    def __exit__(self, *exc) -> None:
        self.close()


def _run(potential, backend, transmission, step, prop, counts, absorbed, after, branch,
         last_b, energy_kv, trailing_vacuum, progress, timings):  # fmt: skip
    """The slice loop of :func:`multislice`."""
    grid = potential.grid
    dzs = potential.thicknesses
    ns = potential.num_slices
    t_pot = t_ms = 0.0
    psi = backend.ones(grid.shape)
    pending = 0.0  # vacuum thickness not yet propagated
    progress.start(ns, "multislice")
    psi_b, pending_b, diverged = None, 0.0, False
    for i in range(ns):
        dz = float(dzs[i])
        if branch is not None and not diverged:
            sel = potential.atoms_in_slice(i)
            if len(sel) and not branch[sel].all():  # first slice with other atoms
                diverged = True
                psi_b, pending_b = backend.copy(psi), pending
        t0 = time.perf_counter()
        t = transmission(i) if counts[i] else None
        t1 = time.perf_counter()
        t_pot += t1 - t0
        if t is not None:
            psi = step(psi, t, after[i], pending)
            pending = 0.0
        elif not absorbed[i]:
            pending += dz
        if diverged and i <= last_b:
            t2 = time.perf_counter()
            tb = None
            if branch[potential.atoms_in_slice(i)].any():
                tb = transmission.make([i], branch)[0]
            t1 += time.perf_counter() - t2
            t_pot += time.perf_counter() - t2
            if tb is None:
                pending_b += dz
            else:
                psi_b = step(psi_b, tb, dz, pending_b)
                pending_b = 0.0
        elif branch is not None and not diverged and i == last_b:
            psi_b = backend.copy(psi)  # the branch ends before any other atom
        backend.synchronize()
        t_ms += time.perf_counter() - t1
        progress.advance()
    if pending > 0 and trailing_vacuum:
        psi = backend.ifft2(backend.multiply(backend.fft2(psi), prop(pending)))
    out = backend.to_host(psi).astype(np.complex64, copy=False)
    if timings is not None:
        timings["potential"] = timings.get("potential", 0.0) + t_pot
        timings["multislice"] = timings.get("multislice", 0.0) + t_ms
    if branch is not None and psi_b is None:  # no masked atoms at all: vacuum
        wb = np.ones(grid.shape, np.complex64)
    elif branch is not None:
        wb = backend.to_host(psi_b).astype(np.complex64, copy=False)
    return ExitWaves(
        out[None],
        grid.sampling,
        float(energy_kv),
        {} if timings is None else timings,
        backend.name,
        None if branch is None else wb[None],
    )
