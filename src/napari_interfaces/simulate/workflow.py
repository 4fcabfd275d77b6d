"""The HRTEM workflow: structure -> exit waves -> image -> labels, composed once (no Qt, no napari).

Parameters are two workflow specs (:mod:`napari_interfaces.core.spec`):
:class:`StructureParams` (the scene) and :class:`HRTEMParams` (simulator,
optics, detector, labels). The CLI (``simulate structure|image``), the
HRTEM dock, the demo and the database sampler (:func:`simulate_sample`)
all call the one composition, :func:`simulate_hrtem`:

1. :func:`build_structure` -> :class:`~.structures.Scene` (skipped when a
   scene or atoms are given);
2. :class:`~.hrtem.HRTEMSimulator` -> the cached exit waves (and the
   particle-only ones for the labels, in the same pass where possible);
3. :func:`image` -> :class:`~napari_interfaces.core.geometry.GriddedArray`:
   an image for one set of optics and dose from the cached exit waves
   (cheap: what the dock's defocus/dose sliders call, off the GUI thread);
4. :func:`~.hrtem.make_labels` -> per-particle labels, resized to the image.

Example
-------
>>> from napari_interfaces.simulate import workflow
>>> structure = workflow.StructureParams(extent=(20, 20), substrate_thickness=0,
...                                      particle_diameter=8, seed=0)
>>> params = workflow.HRTEMParams(sampling=0.2, defocus=50, dose=1000, device="numpy")
>>> out = workflow.simulate_hrtem(structure, params)                    # doctest: +SKIP
>>> out.image.grid.spacing, out.instances.shape                          # doctest: +SKIP
((0.2, 0.2), (100, 100))
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError, ParameterError
from ..core.geometry import Grid, GriddedArray
from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from .structures import SHAPES

__all__ = [
    "HRTEMFiles",
    "HRTEMParams",
    "HRTEMResult",
    "HRTEMSimulation",
    "SimulatedSample",
    "StructureFiles",
    "StructureParams",
    "build_structure",
    "image",
    "sample_parameters",
    "simulate_hrtem",
    "simulate_sample",
    "simulate_scene",
]

#: Structure file suffixes ase writes (the scene file of ``simulate structure``).
STRUCTURE_SUFFIXES = (".xyz", ".extxyz", ".cif", ".vasp", ".pdb", ".traj", ".json")
#: Image, exit-wave and label file suffixes (the outputs of ``simulate image``).
IMAGE_SUFFIXES = (".npy", ".tif", ".tiff")


# -- specs ---------------------------------------------------------------------
def _zone_axis(text: str) -> tuple[int, int, int] | str:
    """``"1 1 0"`` -> ``(1, 1, 0)``; ``"random"``/``"none"`` as they are."""
    text = str(text).strip()
    if text in ("random", "none"):
        return text
    try:
        axis = tuple(int(x) for x in text.replace(",", " ").split())
    except ValueError:
        axis = ()
    if len(axis) != 3 or not any(axis):
        raise ParameterError(
            "orientation", f"must be 'random', 'none' or a zone axis 'u v w', got {text!r}"
        )
    return axis  # type: ignore[return-value]


def _check_element(element: str) -> None:
    """A chemical symbol with a reference crystal structure in ase."""
    from ase.data import atomic_numbers, reference_states

    z = atomic_numbers.get(str(element))
    if z is None or not 0 < z < len(reference_states):
        raise ParameterError("element", f"{element!r} is not a chemical symbol (e.g. Au, Pt)")
    if not reference_states[z] or reference_states[z].get("symmetry") not in (
        "fcc",
        "bcc",
        "hcp",
        "diamond",
    ):
        raise ParameterError(
            "element", f"{element!r} has no reference crystal structure to build particles from"
        )


#: The bound of a seed (any int64; "random": a fresh one per run).
_SEED = {"lo": 0, "hi": 2**63 - 1, "none": "random", "advanced": True}


@dataclass(frozen=True)
class StructureParams(Spec):
    """Nanoparticles on amorphous carbon (:func:`~.structures.build_scene`)."""

    element: str = param("Au", "chemical symbol of the particles (fcc metals: Au, Ag, Pt, ...)")
    shape: str = param(
        "sphere",
        "particle shape: a sphere cut from the crystal or a Wulff-type polyhedron",
        choices=SHAPES,
    )
    particle_diameter: tuple[float, ...] = param(
        (50.0,),
        "particle diameter (one for all, or one per particle)",
        unit="Å",
        lo=0,
        lo_open=True,
        hi=1e4,
        nargs="+",
        alias="diameter",
        label="diameter",
        step=1.0,
    )
    n_particles: int = param(
        1,
        "number of particles, placed at random without overlap",
        lo=1,
        hi=1000,
        alias="particles",
        label="particles",
    )
    defects: tuple[str, ...] | None = param(
        None,
        "{111} planar defect(s) through the particle (spheres only): twin, stacking_fault",
        choices=("twin", "stacking_fault"),
        item=str,
        none="none",
        nargs="+",
        alias="defect",
        label="defect",
    )
    extent: tuple[float, ...] = param(
        (102.4, 102.4),
        "field of view (Lx, Ly) of the cell; one value for a square",
        unit="Å",
        lo=0,
        lo_open=True,
        hi=1e4,
        nargs="+",
        label="field of view",
    )
    orientation: str = param(
        "random",
        "zone axis along the beam as 'u v w' (e.g. '1 1 0'), 'random' or 'none'",
        advanced=True,
    )
    substrate_thickness: float = param(
        50.0,
        "thickness of the amorphous carbon support (0 = none)",
        unit="Å",
        lo=0,
        hi=1e4,
        advanced=True,
        label="a-C thickness",
        step=5.0,
    )
    substrate_density: float = param(
        2.0, "density of the amorphous carbon", unit="g/cm³", lo=0, lo_open=True, hi=30,
        advanced=True, step=0.1,
    )  # fmt: skip
    placement: str = param(
        "on",
        "particles on the carbon's entrance surface, or sunk embed_depth into it",
        choices=("on", "embedded"),
        advanced=True,
    )
    embed_depth: float = param(
        5.0, "depth of embedded particles", unit="Å", lo=0, hi=1e4, advanced=True
    )
    min_gap: float = param(
        5.0, "gap between particles and to the cell edge", unit="Å", lo=0, hi=1e4, advanced=True
    )
    seed: int | None = param(
        None, "random seed of the structure, phonons and noise (same seed, same result)", **_SEED
    )

    def check(self) -> None:
        n = len(self.particle_diameter)
        if n not in (1, self.n_particles):
            raise ParameterError(
                "particle_diameter",
                f"give one value or one per particle ({{n_particles}} = {self.n_particles}), got {n}",
            )
        if len(self.extent) not in (1, 2):
            raise ParameterError("extent", f"give Lx Ly (or one value), got {len(self.extent)}")
        _zone_axis(self.orientation)
        _check_element(self.element)

    def scene_kwargs(self) -> dict[str, Any]:
        """:func:`~.structures.build_scene`'s keyword arguments (without ``rng``)."""
        ext = self.extent if len(self.extent) == 2 else self.extent * 2
        diam = self.particle_diameter
        return dict(
            extent=tuple(ext),
            substrate_thickness=self.substrate_thickness,
            n_particles=self.n_particles,
            element=self.element,
            shape=self.shape,
            particle_diameter=diam[0] if len(diam) == 1 else list(diam),
            defects=list(self.defects) if self.defects else None,
            orientation=_zone_axis(self.orientation),
            placement=self.placement,
            embed_depth=self.embed_depth,
            min_gap=self.min_gap,
            substrate_density=self.substrate_density,
        )


@dataclass(frozen=True)
class StructureFiles(Spec):
    """Output files of ``simulate structure``."""

    out: Path = param(
        None, "output scene file (extended xyz recommended)", metavar="SCENE.xyz", gui=False
    )
    overwrite: bool = param(False, "replace existing output files", gui=False)

    def check(self) -> None:
        self.required("out")
        if self.out.suffix.lower() not in STRUCTURE_SUFFIXES:
            raise ParameterError(
                "out", f"{self.out}: use an .xyz (extended xyz) file or another ase format"
            )


def _aberration_names() -> set[str]:
    from .ctf import ABERRATION_SYMBOLS

    names = {sym for sym, _, _ in ABERRATION_SYMBOLS}
    return names | {"phi" + sym[1:] for sym in names}


def parse_aberrations(items: tuple[str, ...] | None) -> dict[str, float]:
    """``("C12=20", "phi12=0.5")`` -> ``{"C12": 20.0, "phi12": 0.5}`` (Å, rad)."""
    names = _aberration_names()
    out: dict[str, float] = {}
    for item in items or ():
        k, sep, v = str(item).partition("=")
        k = k.strip()
        if not sep or k not in names:
            raise ParameterError(
                "aberrations",
                f"expects NAME=VALUE with NAME in C10..C56, phi12..phi56; got {item!r}",
            )
        try:
            out[k] = float(v)
        except ValueError:
            raise ParameterError("aberrations", f"{k}: not a number: {v!r}") from None
        if not np.isfinite(out[k]):
            raise ParameterError("aberrations", f"{k}: must be finite, got {v!r}")
    return out


@dataclass(frozen=True)
class HRTEMParams(Spec):
    """Multislice HRTEM: simulator, optics, detector and labels."""

    energy_kv: float = param(200.0, "accelerating voltage", unit="kV", lo=10, hi=3000, step=10)
    sampling: float = param(
        0.1,
        "multislice pixel size; finer is more accurate and slower (0.1-0.2 Å)",
        unit="Å",
        lo=0.005,
        hi=2.0,
        step=0.005,
    )
    defocus: float = param(
        0.0, "defocus = -C10; positive is underfocus", unit="Å", lo=-1e12, hi=1e12, step=5
    )
    cs: float = param(
        0.0, "spherical aberration C30 (1 mm = 1e7 Å)", unit="Å", lo=-1e12, hi=1e12, label="Cs"
    )
    focal_spread: float = param(
        0.0, "standard deviation of the defocus (temporal coherence)", unit="Å", lo=0, hi=1e12
    )
    dose: float | None = param(
        None, "electron dose (Poisson noise)", unit="e/Å²", lo=0, lo_open=True, hi=1e12,
        none="off",
    )  # fmt: skip
    slice_thickness: float = param(
        2.0, "thickness of one multislice slice (1-2 Å is typical)", unit="Å", lo=0.05,
        hi=1000, advanced=True, step=0.5,
    )  # fmt: skip
    parametrization: str = param(
        "lobato", "electron scattering factors", choices=("lobato", "kirkland"), advanced=True
    )
    frozen_phonons: int = param(
        1,
        "thermally displaced configurations averaged (1 = static lattice)",
        lo=1,
        hi=1000,
        advanced=True,
    )
    aberrations: tuple[str, ...] | None = param(
        None,
        "other Krivanek coefficients, e.g. C12=20 phi12=0.5 C50=5e7 (Å, rad)",
        item=str,
        none="none",
        nargs="+",
        alias="aberration",
        metavar="NAME=VALUE",
        advanced=True,
    )
    focal_mode: str = param(
        "envelope",
        "temporal coherence as an envelope or a sum over defoci",
        choices=("envelope", "sum"),
        advanced=True,
    )
    source_spread_mrad: float = param(
        0.0, "beam-tilt spread (spatial coherence)", unit="mrad", lo=0, hi=100, advanced=True
    )
    aperture_mrad: float | None = param(
        None, "objective aperture", unit="mrad", lo=0, lo_open=True, hi=1000, none="off",
        advanced=True,
    )  # fmt: skip
    mtf: tuple[float, ...] | None = param(
        None,
        "detector MTF (1-c)/(1+(q/q0)^power)+c as Q0 C POWER, q in Nyquist units",
        none="off",
        nargs=3,
        metavar=("Q0", "C", "POWER"),
        advanced=True,
    )
    median: int = param(0, "median filter size (0 = none)", unit="px", lo=0, hi=101, advanced=True)
    pixel_size: float | None = param(
        None, "resample the image to this pixel size", unit="Å", lo=0.005, hi=100, none="off",
        advanced=True,
    )  # fmt: skip
    label_method: str = param(
        "exit_wave",
        "labels: exit_wave = phase > pi/12 of the particle-only exit wave (Rangel DaCosta "
        "2024); atoms = within 1.5 Å of the projected particle atoms",
        choices=("exit_wave", "atoms"),
        advanced=True,
        label="labels",
    )
    device: str | None = param(
        None,
        "multislice backend: auto, cpu, numpy, torch, cuda[:N] or opencl:N",
        none="config",
        advanced=True,
    )
    seed: int | None = param(None, "random seed of the phonons and the noise", **_SEED)

    def check(self) -> None:
        parse_aberrations(self.aberrations)
        if self.mtf is not None:
            if len(self.mtf) != 3:
                raise ParameterError("mtf", f"give Q0 C POWER, got {len(self.mtf)} values")
            q0, c, power = self.mtf
            if q0 <= 0:
                raise ParameterError("mtf", f"Q0 must be > 0, got {q0:g}")
            if not 0 <= c <= 1:
                raise ParameterError("mtf", f"C must be in [0, 1], got {c:g}")
            if not 0 < power <= 100:
                raise ParameterError("mtf", f"POWER must be in (0, 100], got {power:g}")

    def simulator_kwargs(self) -> dict[str, Any]:
        """:class:`~.hrtem.HRTEMSimulator`'s keyword arguments (without the seed)."""
        return dict(
            energy_kv=self.energy_kv,
            sampling=self.sampling,
            slice_thickness=self.slice_thickness,
            parametrization=self.parametrization,
            frozen_phonons=self.frozen_phonons,
            device=self.device,
        )

    def optics(self) -> dict[str, Any]:
        """The :class:`~.ctf.CTF`'s fields (without the energy)."""
        return dict(
            defocus=self.defocus,
            cs=self.cs,
            aberrations=parse_aberrations(self.aberrations),
            aperture_mrad=self.aperture_mrad,
            focal_spread=self.focal_spread,
            focal_mode=self.focal_mode,
            source_spread_mrad=self.source_spread_mrad,
        )

    def detector(self) -> dict[str, Any]:
        """:meth:`~.hrtem.HRTEMSimulator.image`'s detector arguments."""
        mtf = dict(zip(("q0", "c", "power"), self.mtf)) if self.mtf else None
        return dict(dose=self.dose, mtf=mtf, median=self.median, pixel_size=self.pixel_size)


@dataclass(frozen=True)
class HRTEMFiles(Spec):
    """Input and output files of ``simulate image``."""

    structure: Path = param(
        None, "structure file with a cell (any ase-readable format)", positional=True,
        metavar="STRUCTURE", gui=False,
    )  # fmt: skip
    out: Path = param(None, "image file: .npy or .tif", metavar="IMAGE.tif", gui=False)
    exit_wave: Path | None = param(
        None, "also write the exit wave(s)", metavar="WAVE.npy", none="off", gui=False
    )
    labels: Path | None = param(
        None, "per-particle instance labels (0 = background)", metavar="LABELS.tif",
        none="off", gui=False,
    )  # fmt: skip
    particles: Path | None = param(
        None,
        "particle-only structure for the labels (auto: <stem>_particles<suffix>, else the "
        "atoms with particle_id > 0)",
        none="auto",
        gui=False,
    )
    overwrite: bool = param(False, "replace existing output files", gui=False)

    def check(self) -> None:
        self.required("structure", "out")


# -- results -------------------------------------------------------------------
@dataclass
class HRTEMSimulation:
    """The simulator with its cached exit waves, the scene and its labels.

    Attributes
    ----------
    simulator : HRTEMSimulator
        Holds the cached exit waves: :func:`image` reuses them.
    scene : Scene or None
        ``None`` when atoms were given instead of a scene.
    labels : int32 ``(ny, nx)`` or None
        Per-particle instance labels on the simulation grid (0 background).
    grid : Grid
        The simulation grid (axes ``yx``, Å).
    timings : dict
        Seconds per stage.
    """

    simulator: Any
    scene: Any
    labels: np.ndarray | None
    grid: Grid
    timings: dict = field(default_factory=dict)


@dataclass
class HRTEMResult:
    """What :func:`simulate_hrtem` returns.

    Attributes
    ----------
    image : GriddedArray
        The detector image (float32, vacuum = 1) and its grid in Å.
    mask : uint8 ``(ny, nx)`` or None
        0 background, 1 particle, on the image grid.
    instances : int32 ``(ny, nx)`` or None
        Particle ids on the image grid.
    simulation : HRTEMSimulation
        Re-image it cheaply with :func:`image`.
    timings : dict
        Seconds per stage.
    """

    image: GriddedArray
    mask: np.ndarray | None
    instances: np.ndarray | None
    simulation: HRTEMSimulation
    timings: dict = field(default_factory=dict)


# -- the steps -----------------------------------------------------------------
def build_structure(
    params: StructureParams | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    progress: Progress | None = None,
    **values: Any,
):
    """A scene of particles on amorphous carbon (:func:`~.structures.build_scene`).

    ``rng`` defaults to the spec's ``seed``.
    """
    from .structures import build_scene

    params = StructureParams.of(params, **values)
    progress = as_progress(progress)
    progress.start(None, "building structure")
    return build_scene(**params.scene_kwargs(), rng=params.seed if rng is None else rng)


def image(
    simulation: HRTEMSimulation,
    params: HRTEMParams | None = None,
    *,
    ctf=None,
    detector: dict | None = None,
    rng: np.random.Generator | int | None = None,
    progress: Progress | None = None,
    **values: Any,
) -> GriddedArray:
    """An image from the cached exit waves (see :meth:`.hrtem.HRTEMSimulator.image`).

    The optics are ``ctf`` or the spec's; ``detector`` adds detector
    arguments the spec has no field for (``blur``, ``drift``, ``gradient``)
    or replaces its own. ``rng`` (the noise) defaults to the spec's seed.
    """
    params = HRTEMParams.of(params, **values)
    progress = as_progress(progress)
    progress.check()
    sim = simulation.simulator
    if ctf is None:
        ctf = sim.ctf(**params.optics())
    det = {**params.detector(), **(detector or {})}
    return sim.image(ctf, **det, rng=params.seed if rng is None else rng, progress=progress)


def simulate_hrtem(
    structure,
    params: HRTEMParams | None = None,
    *,
    particles=None,
    labels: bool = True,
    ctf=None,
    detector: dict | None = None,
    rms=None,
    label_margin: float = 0.0,
    phonon_seed: int | None = None,
    rng: np.random.Generator | int | None = None,
    progress: Progress | None = None,
    **values: Any,
) -> HRTEMResult:
    """The HRTEM pipeline, composed once: structure -> exit waves -> image -> labels.

    Parameters
    ----------
    structure : StructureParams, Scene or ase.Atoms
        A spec (the scene is built, with ``rng`` or its seed), a built
        :class:`~.structures.Scene`, or atoms with an orthorhombic cell (then
        ``particles`` gives the particle-only structure for the labels).
    params : HRTEMParams, optional
        Simulator, optics, detector and label method; or give its fields as
        keywords (``sampling=0.2``).
    particles : ase.Atoms, optional
        With atoms: the particle-only structure.
    labels : bool
        Make the labels (needs the particle-only structure).
    ctf : CTF, optional
        Optics instead of the spec's (the database sampler's recipes).
    detector : dict, optional
        More detector arguments (``blur``, ``drift``, ``gradient``, or a
        recipe's ``mtf`` mapping); see :func:`image`.
    rms : float or dict, optional
        Frozen-phonon displacements (:func:`.frozen_phonons.displaced_positions`).
    label_margin : float
        Å by which the label boundary moves inwards (:func:`.labels.shrink_mask`).
    phonon_seed, rng : optional
        Seed of the phonon configurations and generator of the noise; both
        default to the spec's seed. A structure spec without a seed of its
        own is drawn from ``rng`` too.
    progress : Progress, optional

    Returns
    -------
    HRTEMResult
    """
    from .hrtem import HRTEMSimulator, make_labels
    from .labels import resize_labels

    params = HRTEMParams.of(params, **values)
    progress = as_progress(progress)
    rng = params.seed if rng is None else rng
    timings: dict[str, Any] = {}
    scene = None
    t0 = time.perf_counter()
    if isinstance(structure, StructureParams):
        if structure.seed is not None:  # the structure's own seed
            scene = build_structure(structure, progress=progress)
        else:  # one generator for the structure and the noise
            rng = np.random.default_rng(rng)
            scene = build_structure(structure, rng=rng, progress=progress)
        timings["structure"] = time.perf_counter() - t0
    elif hasattr(structure, "atoms") and hasattr(structure, "particles"):
        scene = structure
    if scene is not None:
        atoms, particles = scene.atoms, scene.particles
    else:
        atoms = structure
    seed = params.seed if phonon_seed is None else phonon_seed
    sim = HRTEMSimulator(atoms, particles if labels else None, **params.simulator_kwargs(),
                         rms=rms, seed=seed)  # fmt: skip
    ew = sim.exit_waves(progress)
    simulation = HRTEMSimulation(sim, scene, None, ew.grid, timings)
    img = image(simulation, params, ctf=ctf, detector=detector, rng=rng, progress=progress)
    mask = inst = None
    if labels:
        t1 = time.perf_counter()
        mask, inst = make_labels(sim, params.label_method, progress=progress, margin=label_margin)
        simulation.labels = inst
        shape = img.data.shape
        mask, inst = resize_labels(mask, shape), resize_labels(inst, shape)
        timings["labels"] = time.perf_counter() - t1
    timings.update({k: v for k, v in ew.timings.items() if k not in timings})
    return HRTEMResult(img, mask, inst, simulation, timings)


def simulate_scene(
    scene,
    params: HRTEMParams | None = None,
    *,
    progress: Progress | None = None,
    **values: Any,
) -> HRTEMSimulation:
    """Exit waves of ``scene`` and its labels (:func:`simulate_hrtem`'s simulation)."""
    return simulate_hrtem(scene, params, progress=progress, **values).simulation


# -- one labelled sample (the database sampler) ---------------------------------
#: Detector arguments of :meth:`~.hrtem.HRTEMSimulator.image` a sample accepts.
_DETECTOR = ("dose", "mtf", "median", "pixel_size", "blur", "drift", "gradient")
#: Simulator arguments (the rest of ``HRTEMSimulator.__init__`` is the structure and seed).
_SIMULATOR = (
    "energy_kv",
    "sampling",
    "slice_thickness",
    "parametrization",
    "frozen_phonons",
    "rms",
)


def _scene_names() -> tuple[str, ...]:
    from .structures import build_scene

    return tuple(k for k in inspect.signature(build_scene).parameters if k != "rng")


def _optics_names() -> tuple[str, ...]:
    from .ctf import CTF

    return tuple(f.name for f in fields(CTF) if f.name != "energy_kv")


def sample_parameters() -> dict[str, tuple[str, ...]]:
    """The keyword arguments :func:`simulate_sample` accepts, by group.

    ``structure``: :func:`.structures.build_scene`'s; ``microscope``: the
    simulator's and the :class:`~.ctf.CTF`'s; ``detector``: noise, MTF,
    resampling; ``other``: ``label_method``, ``device``. Defaults are those
    of the function that owns each parameter.
    """
    return {
        "structure": _scene_names(),
        "microscope": _SIMULATOR + _optics_names(),
        "detector": _DETECTOR,
        "other": ("label_method", "label_margin", "device"),
    }


@dataclass
class SimulatedSample:
    """One labelled sample: what :func:`simulate_sample` returns.

    Attributes
    ----------
    image : float32 ``(ny, nx)``
        Vacuum = 1.
    labels : uint8 ``(ny, nx)``
        0 background, 1 particle.
    instances : int32 ``(ny, nx)``
        Particle ids (0 background).
    grid : Grid
        Pixel grid of all three (axes ``yx``, Å).
    scene : Scene
    timings : dict
        Seconds per stage.
    params : dict
        The arguments, with the defaults that applied.
    """

    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    grid: Grid
    scene: Any
    timings: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def sampling(self) -> tuple[float, float]:
        """``(dx, dy)`` in Å."""
        return (self.grid.spacing[1], self.grid.spacing[0])


def _defaults(fn, names) -> dict[str, Any]:
    sig = inspect.signature(fn).parameters
    return {k: sig[k].default for k in names if k in sig}


def simulate_sample(
    rng: np.random.Generator | int | None = None,
    *,
    ctf=None,
    label_method: str = "exit_wave",
    device: str | None = None,
    progress=None,
    label_margin: float = 0.0,
    **params,
) -> SimulatedSample:
    """One labelled sample from a database recipe's values (:func:`simulate_hrtem`).

    Parameters
    ----------
    rng : Generator or int, optional
        All randomness (structure, phonons, noise) comes from it.
    ctf : CTF, optional
        The optics; or give its fields (``defocus=``, ``cs=``, ...) in
        ``params``. Its energy is ``energy_kv``.
    label_method : ``"exit_wave"`` or ``"atoms"``
    label_margin : float
        Å by which the label boundary is moved inwards (see
        :func:`.labels.shrink_mask`; 0 keeps the definition unchanged).
    device : str, optional
        Multislice backend.
    **params
        :func:`.structures.build_scene`'s parameters (``extent``,
        ``substrate_thickness``, ``particle_diameter``, ...), the
        simulator's (``energy_kv``, ``sampling``, ...), the CTF's and the
        detector's (``dose``, ``mtf``, ``median``, ``pixel_size``); see
        :func:`sample_parameters`. Defaults are those of their owners.

    Returns
    -------
    SimulatedSample
    """
    from .hrtem import HRTEMSimulator
    from .structures import build_scene

    groups = sample_parameters()
    scene_names, optics_names = groups["structure"], _optics_names()
    known = set(scene_names) | set(_SIMULATOR) | set(optics_names) | set(_DETECTOR)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ParameterError(unknown[0], f"not a sample parameter; allowed: {sorted(known)}")
    optics = {k: params[k] for k in optics_names if k in params}
    if ctf is not None and optics:
        raise ParameterError(sorted(optics)[0], "give either ctf or the CTF's fields, not both")
    scene_kw = {k: params[k] for k in scene_names if k in params}
    sim_kw = {k: params[k] for k in _SIMULATOR if k in params}
    det_kw = {k: params[k] for k in _DETECTOR if k in params}
    resolved = {
        **_defaults(build_scene, scene_names),
        **scene_kw,
        **_defaults(HRTEMSimulator.__init__, _SIMULATOR),
        **sim_kw,
        **optics,
        **_defaults(HRTEMSimulator.image, _DETECTOR),
        **det_kw,
        "label_method": label_method,
        "label_margin": label_margin,
        "device": device,
    }
    rng = np.random.default_rng(rng)
    t0 = time.perf_counter()
    scene = build_scene(**scene_kw, rng=rng)
    t_struct = time.perf_counter() - t0
    rms = sim_kw.pop("rms", None)
    spec = HRTEMParams(**sim_kw, device=device, label_method=label_method)
    if ctf is None:
        from .ctf import CTF

        ctf = CTF(energy_kv=spec.energy_kv, **optics)
    out = simulate_hrtem(
        scene, spec, ctf=ctf, detector=det_kw, rms=rms, label_margin=label_margin,
        phonon_seed=int(rng.integers(2**31)), rng=rng, progress=progress,
    )  # fmt: skip
    timings = dict(out.simulation.simulator.exit_waves().timings)
    timings.update(structure=t_struct, labels=out.timings.get("labels", 0.0))
    return SimulatedSample(
        image=out.image.data,
        labels=out.mask,
        instances=out.instances,
        grid=out.image.grid,
        scene=scene,
        timings=timings,
        params=resolved,
    )


def read_structure(path: str | Path):
    """An ase structure with a 3D cell from ``path`` (one-line :class:`InputError` otherwise)."""
    import ase.io

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such structure file")
    try:
        atoms = ase.io.read(p)
    except Exception as exc:  # ase raises many types
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read a structure ({msg})") from None
    if atoms.cell.volume <= 0 or atoms.cell.rank < 3:
        raise InputError(f"{path}: the structure has no 3D cell (give it an orthorhombic cell)")
    return atoms


def particles_for(structure: str | Path, atoms, particles: str | Path | None = None):
    """The particle-only structure for the labels of ``atoms`` read from ``structure``.

    ``particles`` if given; else ``<stem>_particles<suffix>`` beside the
    structure; else the atoms with ``particle_id > 0``.
    """
    if particles:
        return read_structure(particles)
    p = Path(structure)
    side = p.with_name(p.stem + "_particles" + p.suffix)
    if side.is_file():
        return read_structure(side)
    ids = atoms.arrays.get("particle_id")
    if ids is None:
        raise InputError(
            f"{structure}: labels need the particle-only structure: give it, or a structure "
            "with a particle_id array (as written by 'simulate structure')"
        )
    parts = atoms[np.asarray(ids) > 0]
    if len(parts) == 0:
        raise InputError(f"{structure}: the structure has no particle atoms (particle_id > 0)")
    return parts
