"""High-level HRTEM simulation: structure -> exit wave(s) -> image (+ labels).

:class:`HRTEMSimulator` caches the exit waves (one per frozen-phonon
configuration); changing defocus, aberrations, coherence, dose or the
detector only re-runs the cheap imaging step.

Example
-------
>>> from napari_interfaces.simulate import structures
>>> from napari_interfaces.simulate.hrtem import HRTEMSimulator
>>> scene = structures.build_scene(particle_diameter=2.0, substrate_thickness=10,
...                                extent=(30, 30), rng=0)            # doctest: +SKIP
>>> sim = HRTEMSimulator(scene.atoms, energy_kv=200, sampling=0.1)      # doctest: +SKIP
>>> img = sim.image(defocus=-100, cs=-1e5)                             # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .backends import get_backend
from .ctf import CTF
from .detector import apply_detector, resample
from .frozen_phonons import displaced_positions
from .multislice import multislice
from .potential import ProjectedPotential

__all__ = ["ExitWaves", "HRTEMSimulator", "simulate_exit_waves"]


@dataclass
class ExitWaves:
    """Exit waves of one structure: ``waves`` complex64 ``(n_configs, ny, nx)``."""

    waves: np.ndarray
    sampling: tuple[float, float]
    energy_kv: float
    timings: dict = field(default_factory=dict)
    backend: str = "numpy"

    @property
    def shape(self) -> tuple[int, int]:
        return self.waves.shape[-2:]


def _atoms_arrays(atoms):
    """(positions, numbers, cell lengths) from an ase.Atoms or a tuple."""
    if isinstance(atoms, tuple):
        return atoms
    cell = np.asarray(atoms.cell[:])
    return atoms.positions, atoms.numbers, cell


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

    With ``branch`` (boolean mask over the atoms) returns ``(ExitWaves,
    ExitWaves)``: the structure's and the masked atoms' alone (at their exit
    surface), sharing the slices they have in common (see
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
    backend = get_backend(device)
    timings = {"setup": time.perf_counter() - t0}
    n = int(frozen_phonons)
    if n < 1:
        raise ValueError("frozen_phonons must be >= 1")
    waves = np.empty((n,) + pot.grid.shape, np.complex64)
    bwaves = None if branch is None else np.empty_like(waves)
    for i in range(n):
        pos = None if n == 1 else displaced_positions(pot.positions, pot.numbers, rms, rng)
        out = multislice(
            pot, energy_kv, backend, pos, progress=progress, timings=timings,
            trailing_vacuum=trailing_vacuum, branch=branch,
        )  # fmt: skip
        if branch is None:
            waves[i] = out
        else:
            waves[i], bwaves[i] = out
    ew = ExitWaves(waves, pot.grid.sampling, energy_kv, timings, backend.name)
    if branch is None:
        return ew
    return ew, ExitWaves(bwaves, pot.grid.sampling, energy_kv, dict(timings), backend.name)


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
                self._exit, self._particle_exit = simulate_exit_waves(
                    self.atoms, rng=self.seed, progress=progress, branch=branch, **self.params
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
            raise ValueError("no particle-only structure was given")
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

        from .potential import Grid

        kwargs = dict(rng=self.seed, progress=progress, trailing_vacuum=False, **self.params)
        positions, numbers, cell = _atoms_arrays(self.particles)
        cell = np.asarray(cell, float)
        lengths = np.diag(cell) if cell.ndim == 2 else cell
        full = Grid.from_sampling(tuple(lengths[:2]), self.params["sampling"])
        (dx, dy), (ny, nx) = full.sampling, full.shape
        lo = np.floor((positions[:, :2].min(0) - self.label_margin) / (dx, dy)).astype(int)
        hi = np.ceil((positions[:, :2].max(0) + self.label_margin) / (dx, dy)).astype(int)
        size = [scipy.fft.next_fast_len(int(b - a)) for a, b in zip(lo, hi)]
        if size[0] >= nx or size[1] >= ny or self.label_margin <= 0:
            return simulate_exit_waves(self.particles, **kwargs)
        shifted = positions - np.array([lo[0] * dx, lo[1] * dy, 0.0])
        box = np.array([size[0] * dx, size[1] * dy, lengths[2]])
        window = Grid((float(box[0]), float(box[1])), (int(size[0]), int(size[1])))
        ew = simulate_exit_waves((shifted, numbers, box), grid=window, **kwargs)
        waves = np.ones((ew.waves.shape[0], ny, nx), np.complex64)
        rows = (lo[1] + np.arange(size[1])) % ny
        cols = (lo[0] + np.arange(size[0])) % nx
        waves[:, rows[:, None], cols[None, :]] = ew.waves
        ew.timings["label_window"] = (int(size[1]), int(size[0]))
        return ExitWaves(waves, full.sampling, ew.energy_kv, ew.timings, ew.backend)

    def ctf(self, **optics) -> CTF:
        return CTF(energy_kv=self.energy_kv, **optics)

    def image(
        self,
        defocus: float = 0.0,
        cs: float = 0.0,
        aberrations: dict | None = None,
        aperture_mrad: float | None = None,
        focal_spread: float = 0.0,
        focal_mode: str = "envelope",
        source_spread_mrad: float = 0.0,
        dose: float | None = None,
        mtf: dict | None = None,
        median: int = 0,
        pixel_size: float | None = None,
        rng: np.random.Generator | int | None = None,
        progress=None,
    ) -> np.ndarray:
        """Image (float32, vacuum = 1) for these optics; reuses the cached exit waves.

        ``pixel_size`` resamples to that pixel size (Å) before the detector.
        """
        ew = self.exit_waves(progress)
        t0 = time.perf_counter()
        ctf = self.ctf(
            defocus=defocus,
            cs=cs,
            aberrations=aberrations or {},
            aperture_mrad=aperture_mrad,
            focal_spread=focal_spread,
            focal_mode=focal_mode,
            source_spread_mrad=source_spread_mrad,
        )
        img = ctf.image(ew.waves, ew.sampling)
        sampling = ew.sampling
        if pixel_size:
            img, sampling = resample(img, sampling, pixel_size)
        self.last_sampling = sampling
        img = apply_detector(img, sampling, dose, mtf, median, np.random.default_rng(rng))
        ew.timings["imaging"] = time.perf_counter() - t0
        return img


def _resize_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if labels.shape == tuple(shape):
        return labels
    ny, nx = labels.shape
    iy = np.minimum((np.arange(shape[0]) + 0.5) * ny / shape[0], ny - 1).astype(int)
    ix = np.minimum((np.arange(shape[1]) + 0.5) * nx / shape[1], nx - 1).astype(int)
    return labels[iy][:, ix]


def make_labels(
    simulator: HRTEMSimulator,
    method: str = "exit_wave",
    threshold: float = np.pi / 12,
    smoothing: float = 1.0,
    radius: float = 1.5,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """(binary mask uint8, instance ids int32) on the simulation grid.

    ``method``: ``"exit_wave"`` (phase of the particle-only exit waves,
    see :func:`.labels.exit_wave_labels`) or ``"atoms"`` (projected atom
    positions, :func:`.labels.atom_labels`).
    """
    from .labels import atom_labels, exit_wave_labels, instance_labels

    parts = simulator.particles
    if parts is None:
        raise ValueError("labels need the particle-only structure")
    ew = simulator.exit_waves()
    if method == "exit_wave":
        pew = simulator.particle_exit_waves(progress)
        mask = exit_wave_labels(pew.waves, pew.sampling, threshold, smoothing)
    elif method == "atoms":
        mask = atom_labels(parts.positions, ew.shape, ew.sampling, radius)
    else:
        raise ValueError("label method must be 'exit_wave' or 'atoms'")
    ids = parts.arrays.get("particle_id", np.ones(len(parts), int))
    inst = instance_labels(mask, parts.positions, ids, ew.sampling)
    return mask, inst


def simulate_sample(
    rng: np.random.Generator | int | None = None,
    *,
    extent: tuple[float, float] = (51.2, 51.2),
    substrate_thickness: float = 30.0,
    n_particles: int = 1,
    element: str = "Au",
    shape: str = "sphere",
    particle_diameter: float | list = 30.0,
    defects=None,
    orientation="random",
    placement: str = "on",
    energy_kv: float = 200.0,
    sampling: float = 0.1,
    slice_thickness: float = 2.0,
    parametrization: str = "lobato",
    frozen_phonons: int = 1,
    defocus: float = 0.0,
    cs: float = 0.0,
    aberrations: dict | None = None,
    aperture_mrad: float | None = None,
    focal_spread: float = 0.0,
    source_spread_mrad: float = 0.0,
    dose: float | None = None,
    mtf: dict | None = None,
    median: int = 0,
    pixel_size: float | None = None,
    label_method: str = "exit_wave",
    device: str | None = None,
    progress=None,
) -> dict:
    """One labelled sample: structure -> exit waves -> image + labels.

    Returns a dict: ``image`` (float32, vacuum = 1), ``labels`` (uint8 0/1),
    ``instances`` (int32 particle ids), ``sampling`` (dx, dy of the image,
    Å), ``scene`` (:class:`.structures.Scene`), ``timings`` (s per stage),
    ``params`` (the arguments). All randomness (structure, phonons, noise)
    comes from ``rng``.
    """
    from .structures import build_scene

    params = {k: v for k, v in locals().items() if k not in ("rng", "progress")}
    rng = np.random.default_rng(rng)
    t0 = time.perf_counter()
    scene = build_scene(
        extent=extent,
        substrate_thickness=substrate_thickness,
        n_particles=n_particles,
        element=element,
        shape=shape,
        particle_diameter=particle_diameter,
        defects=defects,
        orientation=orientation,
        placement=placement,
        rng=rng,
    )
    t_struct = time.perf_counter() - t0
    sim = HRTEMSimulator(
        scene.atoms,
        scene.particles,
        energy_kv=energy_kv,
        sampling=sampling,
        slice_thickness=slice_thickness,
        parametrization=parametrization,
        frozen_phonons=frozen_phonons,
        seed=int(rng.integers(2**31)),
        device=device,
    )
    image = sim.image(
        defocus=defocus,
        cs=cs,
        aberrations=aberrations,
        aperture_mrad=aperture_mrad,
        focal_spread=focal_spread,
        source_spread_mrad=source_spread_mrad,
        dose=dose,
        mtf=mtf,
        median=median,
        pixel_size=pixel_size,
        rng=rng,
        progress=progress,
    )
    t1 = time.perf_counter()
    mask, inst = make_labels(sim, label_method, progress=progress)
    timings = dict(sim.exit_waves().timings)
    timings.update(structure=t_struct, labels=time.perf_counter() - t1)
    mask = _resize_nearest(mask, image.shape)
    inst = _resize_nearest(inst, image.shape)
    return dict(
        image=image,
        labels=mask,
        instances=inst,
        sampling=sim.last_sampling,
        scene=scene,
        timings=timings,
        params=params,
    )
