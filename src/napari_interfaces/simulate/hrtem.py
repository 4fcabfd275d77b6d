"""High-level HRTEM simulation: structure -> exit wave(s) -> image (+ labels).

:class:`HRTEMSimulator` caches the exit waves (one per frozen-phonon
configuration); changing defocus, aberrations, coherence, dose or the
detector only re-runs the cheap imaging step.

Results are objects, not side channels: :meth:`HRTEMSimulator.image`
returns a :class:`~napari_interfaces.core.geometry.GriddedArray` (the image
and its pixel grid in Å). The optics are one :class:`~.ctf.CTF`. The whole
pipeline (structure -> exit waves -> image -> labels) is composed once, in
:func:`.workflow.simulate_hrtem`.

Example
-------
>>> from napari_interfaces.simulate import structures
>>> from napari_interfaces.simulate.ctf import CTF
>>> from napari_interfaces.simulate.hrtem import HRTEMSimulator
>>> scene = structures.build_scene(particle_diameter=2.0, substrate_thickness=10,
...                                extent=(30, 30), rng=0)            # doctest: +SKIP
>>> sim = HRTEMSimulator(scene.atoms, energy_kv=200, sampling=0.1)      # doctest: +SKIP
>>> img = sim.image(CTF(200, defocus=-100, cs=-1e5))                   # doctest: +SKIP
>>> img.data.shape, img.grid.spacing, img.grid.unit                    # doctest: +SKIP
((300, 300), (0.1, 0.1), 'Å')
"""

from __future__ import annotations

import time
from dataclasses import fields

import numpy as np

from ..core.errors import InputError, ParameterError
from ..core.geometry import GriddedArray
from ..core.limits import check_bytes
from .backends import get_backend
from .ctf import CTF
from .detector import apply_detector, resample
from .frozen_phonons import displaced_positions
from .multislice import ExitWaves, multislice
from .potential import PeriodicGrid, ProjectedPotential, pixel_grid

__all__ = [
    "ExitWaves",
    "HRTEMSimulator",
    "make_labels",
    "simulate_exit_waves",
]


def _atoms_arrays(atoms):
    """(positions, numbers, cell lengths) from an ase.Atoms or a tuple."""
    if isinstance(atoms, tuple):
        return atoms
    cell = np.asarray(atoms.cell[:])
    return atoms.positions, atoms.numbers, cell


def multislice_bytes(shape: tuple[int, int], configurations: int = 1, branch: bool = False) -> int:
    """Estimated peak memory (bytes) of a multislice on a ``shape`` grid.

    The kept exit waves (complex64, one per configuration, twice with a
    label branch) plus about 32 grid-sized complex work arrays (wave,
    propagators, FFT buffers, and the transmission functions and potentials
    of the slices that helper threads prepare ahead).
    """
    npix = int(shape[0]) * int(shape[1])
    waves = configurations * (2 if branch else 1)
    return 8 * npix * (waves + 32)


def simulate_exit_waves(
    atoms,
    energy_kv: float = 200.0,
    sampling: float = 0.1,
    slice_thickness: float = 2.0,
    parametrization: str = "lobato",
    frozen_phonons: int = 1,
    rms=None,
    rng: np.random.Generator | int | None = None,
    device: str | None = None,
    grid=None,
    progress=None,
    trailing_vacuum: bool = True,
    deposit: str = "bspline",
    branch: np.ndarray | None = None,
):
    """Multislice exit waves of ``atoms`` (ase.Atoms with an orthorhombic cell).

    Returns one :class:`~.multislice.ExitWaves`. With ``branch`` (boolean
    mask over the atoms) its ``branch_waves`` are the masked atoms' alone
    (at their exit surface), sharing the slices they have in common (see
    :func:`.multislice.multislice`).

    ``frozen_phonons`` = 1 uses the static lattice; N > 1 computes N
    configurations displaced by :func:`.frozen_phonons.displaced_positions`
    ``deposit``: see :class:`.potential.ProjectedPotential` (``"abtem"`` only
    for comparisons with abTEM)
    (``rms``: float, {symbol: Å} or defaults). Timings per stage (seconds)
    are in ``.timings`` (``setup``, ``potential``, ``multislice``).
    """
    from ..core.progress import as_progress

    progress = as_progress(progress)
    rng = np.random.default_rng(rng)
    t0 = time.perf_counter()
    positions, numbers, cell = _atoms_arrays(atoms)
    pot = ProjectedPotential(
        positions, numbers, cell, sampling, slice_thickness, parametrization, energy_kv, grid,
        deposit,
    )  # fmt: skip
    n = int(frozen_phonons)
    if n < 1:
        raise ParameterError("frozen_phonons", f"must be >= 1, got {frozen_phonons}")
    check_bytes(
        multislice_bytes(pot.grid.shape, n, branch is not None),
        f"multislice on a {pot.grid.shape[1]} x {pot.grid.shape[0]} grid ({n} configuration(s))",
    )
    backend = get_backend(device)
    timings = {"setup": time.perf_counter() - t0}
    waves = np.empty((n,) + pot.grid.shape, np.complex64)
    bwaves = None if branch is None else np.empty_like(waves)
    for i in range(n):
        pos = None if n == 1 else displaced_positions(pot.positions, pot.numbers, rms, rng)
        out = multislice(
            pot, energy_kv, backend, pos, progress=progress, timings=timings,
            trailing_vacuum=trailing_vacuum, branch=branch,
        )  # fmt: skip
        waves[i] = out.waves[0]
        if bwaves is not None:
            bwaves[i] = out.branch_waves[0]
    return ExitWaves(waves, pot.grid.sampling, energy_kv, timings, backend.name, bwaves)


class HRTEMSimulator:
    """Structure -> cached exit waves -> images for many imaging conditions.

    Parameters
    ----------
    atoms : ase.Atoms
        The full scene (orthorhombic cell, beam along +z).
    particles : ase.Atoms, optional
        The particle-only structure (same cell) for exit-wave labels.
    energy_kv, sampling, slice_thickness, parametrization, frozen_phonons, rms, device
        See :func:`simulate_exit_waves`.
    """

    def __init__(
        self,
        atoms,
        particles=None,
        energy_kv: float = 200.0,
        sampling: float = 0.1,
        slice_thickness: float = 2.0,
        parametrization: str = "lobato",
        frozen_phonons: int = 1,
        rms=None,
        seed: int | None = 0,
        device: str | None = None,
    ) -> None:
        self.atoms = atoms
        self.particles = particles
        self.params = dict(
            energy_kv=energy_kv,
            sampling=sampling,
            slice_thickness=slice_thickness,
            parametrization=parametrization,
            frozen_phonons=frozen_phonons,
            rms=rms,
            device=device,
        )
        self.seed = seed
        self._exit: ExitWaves | None = None
        self._particle_exit: ExitWaves | None = None

    @property
    def energy_kv(self) -> float:
        return self.params["energy_kv"]

    def exit_waves(self, progress=None) -> ExitWaves:
        """The scene's exit waves (computed once, then cached).

        When the particles lie on the beam-entrance side of everything else
        (``placement="on"``), the particle-only exit waves for the labels are
        computed in the same pass (:meth:`particle_exit_waves`).
        """
        if self._exit is None:
            branch = self._shared_branch()
            if branch is None:
                self._exit = simulate_exit_waves(
                    self.atoms, rng=self.seed, progress=progress, **self.params
                )
            else:
                ew = simulate_exit_waves(
                    self.atoms, rng=self.seed, progress=progress, branch=branch, **self.params
                )
                self._exit = ew
                self._particle_exit = ExitWaves(
                    ew.branch_waves, ew.sampling, ew.energy_kv, dict(ew.timings), ew.backend
                )
                self._particle_exit.timings["label_pass"] = "shared"
        return self._exit

    def _shared_branch(self) -> np.ndarray | None:
        """Mask of the particle atoms in the scene when the label pass can share slices."""
        if self.particles is None or self._particle_exit is not None:
            return None
        ids = getattr(self.atoms, "arrays", {}).get("particle_id")
        if ids is None:
            return None
        branch = np.asarray(ids) > 0
        if not branch.any() or branch.all() or int(branch.sum()) != len(self.particles):
            return None
        z = np.asarray(self.atoms.positions)[:, 2]
        if z[branch].min() >= z[~branch].min():  # substrate first: nothing to share
            return None
        return branch

    def particle_exit_waves(self, progress=None) -> ExitWaves:
        """Exit waves of the particle-only structure at its exit surface (cached).

        When the particles lie on the beam-entrance side of the substrate,
        they come from the scene's own pass (:meth:`exit_waves`): the two
        waves are identical until the first slice holding substrate atoms,
        after which only the particle atoms of the remaining slices are
        followed (frozen-phonon configurations are then the scene's).
        Otherwise the multislice runs in a window around the particles (their
        projected bounding box plus :attr:`label_margin` Å on each side,
        rounded to an FFT-friendly size) whose pixels coincide with the full
        grid's; outside the window the wave is the unscattered plane wave
        (1). A particle-only wave decays to vacuum within a few Å of the
        particle, so the labels equal those of the full grid (test) at a
        fraction of the cost. Particles that straddle the periodic boundary
        use the full grid.
        """
        if self.particles is None:
            raise InputError("no particle-only structure was given")
        if (
            self._particle_exit is None
            and self._exit is None
            and self._shared_branch() is not None
        ):
            self.exit_waves(progress)  # computes both in one pass
        if self._particle_exit is None:
            self._particle_exit = self._windowed_particle_waves(progress)
        return self._particle_exit

    #: Vacuum margin (Å) around the particles for the particle-only multislice.
    label_margin = 8.0

    def _windowed_particle_waves(self, progress=None) -> ExitWaves:
        import scipy.fft

        kwargs = dict(rng=self.seed, progress=progress, trailing_vacuum=False, **self.params)
        positions, numbers, cell = _atoms_arrays(self.particles)
        cell = np.asarray(cell, float)
        lengths = np.diag(cell) if cell.ndim == 2 else cell
        full = PeriodicGrid.from_sampling(tuple(lengths[:2]), self.params["sampling"])
        (dx, dy), (ny, nx) = full.sampling, full.shape
        lo = np.floor((positions[:, :2].min(0) - self.label_margin) / (dx, dy)).astype(int)
        hi = np.ceil((positions[:, :2].max(0) + self.label_margin) / (dx, dy)).astype(int)
        size = [scipy.fft.next_fast_len(int(b - a)) for a, b in zip(lo, hi)]
        if size[0] >= nx or size[1] >= ny or self.label_margin <= 0:
            return simulate_exit_waves(self.particles, **kwargs)
        shifted = positions - np.array([lo[0] * dx, lo[1] * dy, 0.0])
        box = np.array([size[0] * dx, size[1] * dy, lengths[2]])
        window = PeriodicGrid((float(box[0]), float(box[1])), (int(size[0]), int(size[1])))
        ew = simulate_exit_waves((shifted, numbers, box), grid=window, **kwargs)
        waves = np.ones((ew.waves.shape[0], ny, nx), np.complex64)
        rows = (lo[1] + np.arange(size[1])) % ny
        cols = (lo[0] + np.arange(size[0])) % nx
        waves[:, rows[:, None], cols[None, :]] = ew.waves
        ew.timings["label_window"] = (int(size[1]), int(size[0]))
        return ExitWaves(waves, full.sampling, ew.energy_kv, ew.timings, ew.backend)

    def ctf(self, **optics) -> CTF:
        """A :class:`~.ctf.CTF` at this simulator's energy."""
        return CTF(energy_kv=self.energy_kv, **optics)

    def image(
        self,
        ctf: CTF | None = None,
        *,
        dose: float | None = None,
        mtf: dict | None = None,
        median: int = 0,
        pixel_size: float | None = None,
        rng: np.random.Generator | int | None = None,
        progress=None,
        blur: float = 0.0,
        drift: float = 0.0,
        gradient: float = 0.0,
    ) -> GriddedArray:
        """Image (float32, vacuum = 1) for these optics; reuses the cached exit waves.

        Parameters
        ----------
        ctf : CTF, optional
            The optics (defocus, aberrations, aperture, coherence); its
            ``energy_kv`` must be the simulator's. Default: no aberrations.
        dose : float, optional
            e/Å² for Poisson noise (None: noise-free).
        mtf : dict, optional
            Keyword arguments of :func:`.detector.mtf_curve`.
        median : int
            Median filter size (pixels), 0 for none.
        pixel_size : float, optional
            Resample to this pixel size (Å) before the detector.
        rng : Generator or int, optional
            Noise generator.
        blur, drift, gradient : float
            Gaussian blur rms (Å), linear drift length (Å) and relative
            illumination gradient, see :func:`.detector.apply_detector`
            (0: none, the plain detector's output).

        Returns
        -------
        GriddedArray
            ``data`` ``(ny, nx)`` float32; ``grid`` axes ``yx`` in Å;
            ``metadata``: ``pixel_size`` (Å), ``energy_kv``, ``ctf`` (its
            fields), ``dose``.
        """
        if ctf is None:
            ctf = self.ctf()
        if float(ctf.energy_kv) != float(self.energy_kv):
            raise ParameterError(
                "ctf.energy_kv",
                f"{ctf.energy_kv:g} kV differs from the simulator's {self.energy_kv:g} kV",
            )
        ew = self.exit_waves(progress)
        t0 = time.perf_counter()
        img = ctf.image(ew.waves, ew.sampling)
        sampling = ew.sampling
        if pixel_size:
            img, sampling = resample(img, sampling, pixel_size)
        img = apply_detector(
            img, sampling, dose, mtf, median, np.random.default_rng(rng), blur, drift, gradient
        )
        ew.timings["imaging"] = time.perf_counter() - t0
        grid = pixel_grid(sampling)
        meta = {
            "pixel_size": float(grid.spacing[-1]),
            "energy_kv": float(self.energy_kv),
            "ctf": {f.name: getattr(ctf, f.name) for f in fields(ctf)},
            "dose": dose,
        }
        return GriddedArray(img, grid, meta)


def make_labels(
    simulator: HRTEMSimulator,
    method: str = "exit_wave",
    threshold: float = np.pi / 12,
    smoothing: float = 1.0,
    radius: float = 1.5,
    progress=None,
    margin: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(binary mask uint8, instance ids int32) on the simulation grid.

    ``method``: ``"exit_wave"`` (phase of the particle-only exit waves,
    see :func:`.labels.exit_wave_labels`) or ``"atoms"`` (projected atom
    positions, :func:`.labels.atom_labels`). ``margin`` (Å) moves the
    boundary inwards (:func:`.labels.shrink_mask`; 0: unchanged).
    """
    from .labels import atom_labels, exit_wave_labels, instance_labels

    parts = simulator.particles
    if parts is None:
        raise InputError("labels need the particle-only structure")
    ew = simulator.exit_waves()
    if method == "exit_wave":
        pew = simulator.particle_exit_waves(progress)
        mask = exit_wave_labels(pew.waves, pew.sampling, threshold, smoothing)
    elif method == "atoms":
        mask = atom_labels(parts.positions, ew.shape, ew.sampling, radius)
    else:
        raise ParameterError("label_method", f"must be 'exit_wave' or 'atoms', got {method!r}")
    if margin:
        from .labels import shrink_mask

        mask = shrink_mask(mask, ew.sampling, margin)
    ids = parts.arrays.get("particle_id", np.ones(len(parts), int))
    inst = instance_labels(mask, parts.positions, ids, ew.sampling)
    return mask, inst
