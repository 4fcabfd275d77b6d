"""Structures for HRTEM simulation (ase): nanoparticles, defects, substrates, scenes.

All lengths in Å. The beam travels along +z; scenes have an orthorhombic cell
periodic in x and y. Every scene atom carries ``particle_id`` (an ase
per-atom array): 0 for the substrate, 1..n for the particles; the
particle-only structure (same cell) is kept beside the scene for labels.

Nanoparticle shapes (``shape``):

``sphere``
    Any element/lattice ase knows (``ase.build.bulk``), cut to a sphere.
``octahedron``, ``truncated_octahedron``, ``cuboctahedron``
    ``ase.cluster.Octahedron`` (fcc).
``decahedron``
    ``ase.cluster.Decahedron`` (Marks re-entrance ``r = 1``; fcc).
``icosahedron``
    ``ase.cluster.Icosahedron`` (fcc).
``wulff``
    ``ase.cluster.wulff_construction`` with {100}/{111}/{110} energies
    (default 1.0/0.9/1.1, fcc).

Planar defects (fcc spheres): ``defect="twin"`` (mirror of the stacking
ABCABC|BACBA at the chosen {111} layer) or ``"stacking_fault"`` (one layer
removed from the sequence, ABCAB|ABC; intrinsic fault). Several defects
may be given as a list.

Orientation: ``"random"`` (uniform on SO(3)), a zone axis ``(u, v, w)``
(crystal direction put along the beam, random rotation about it), or a 3x3
rotation matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.errors import InputError

__all__ = [
    "SHAPES",
    "Scene",
    "amorphous_carbon",
    "build_scene",
    "nanoparticle",
    "orientation_matrix",
]

SHAPES = (
    "sphere",
    "octahedron",
    "truncated_octahedron",
    "cuboctahedron",
    "decahedron",
    "icosahedron",
    "wulff",
)

#: Carbon number density at 1 g/cm3, atoms/Å^3 (N_A / 12.011 * 1e-24).
_C_PER_GCM3 = 6.02214076e23 / 12.011 * 1e-24


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# -- substrate -------------------------------------------------------------
def _rsa_fill(cand, pts, n_have, n_target, cells, cell_size, box, d2):  # pragma: no cover
    """Random sequential addition of candidate points (numba-compiled when available).

    Each candidate (in order) is accepted when no accepted point lies within
    ``sqrt(d2)`` (periodic in x and y, open in z). ``cells`` is a grid of
    cells no larger than ``d / sqrt(3)``, so each holds at most one point
    (its index, or -1). Returns the new number of accepted points and the
    number of candidates consumed.
    """
    nx, ny, nz = cells.shape
    lx, ly = box[0], box[1]
    used = 0
    for c in range(cand.shape[0]):
        if n_have >= n_target:
            break
        used += 1
        x, y, z = cand[c, 0], cand[c, 1], cand[c, 2]
        cx = min(int(x / cell_size[0]), nx - 1)
        cy = min(int(y / cell_size[1]), ny - 1)
        cz = min(int(z / cell_size[2]), nz - 1)
        ok = True
        for dx in range(-2, 3):
            if not ok:
                break
            ix = (cx + dx) % nx
            for dy in range(-2, 3):
                if not ok:
                    break
                iy = (cy + dy) % ny
                for dz in range(-2, 3):
                    iz = cz + dz
                    if iz < 0 or iz >= nz:
                        continue
                    j = cells[ix, iy, iz]
                    if j < 0:
                        continue
                    ddx = abs(pts[j, 0] - x)
                    ddx = min(ddx, lx - ddx)
                    ddy = abs(pts[j, 1] - y)
                    ddy = min(ddy, ly - ddy)
                    ddz = pts[j, 2] - z
                    if ddx * ddx + ddy * ddy + ddz * ddz < d2:
                        ok = False
                        break
        if ok:
            pts[n_have, 0] = x
            pts[n_have, 1] = y
            pts[n_have, 2] = z
            cells[cx, cy, cz] = n_have
            n_have += 1
    return n_have, used


def _rsa_kernel():
    """:func:`_rsa_fill` compiled by numba (cached in :mod:`napari_interfaces.core.jit`),
    or the Python function without numba."""
    from ..core.jit import njit

    return njit(_rsa_fill) or _rsa_fill


def amorphous_carbon(
    extent: tuple[float, float],
    thickness: float,
    density: float = 2.0,
    min_distance: float = 1.4,
    rng=None,
    max_candidates: int | None = None,
):
    """Random amorphous carbon, periodic in x and y, no two atoms closer than ``min_distance``.

    Random sequential addition (RSA): uniformly drawn candidates are accepted
    in order when no accepted atom is closer than ``min_distance``, checked
    on a cell grid (each cell holds at most one atom; 125 neighbour cells).
    Compiled with numba when available (about 5 ms for 20,000 atoms); the
    Python fallback gives the same atoms for the same ``rng``.

    Parameters
    ----------
    extent : (Lx, Ly) Å
    thickness : Å, along z (atoms in [0, thickness])
    density : g/cm3 (about 2 for evaporated a-C)
    min_distance : Å
    rng : numpy Generator or seed
    max_candidates : int, optional
        Give up (``RuntimeError``) after this many candidates (default 50 × target).
    """
    from ase import Atoms

    rng = _rng(rng)
    lx, ly = float(extent[0]), float(extent[1])
    if thickness <= 0 or lx <= 0 or ly <= 0:
        raise InputError("substrate extent and thickness must be > 0 Å")
    n_target = int(round(density * _C_PER_GCM3 * lx * ly * thickness))
    packing = n_target / (lx * ly * thickness) * np.pi / 6 * min_distance**3
    if packing > 0.3:
        raise InputError(
            f"min_distance {min_distance} Å is too large for {density} g/cm3 (packing {packing:.2f}"
            "; random sequential addition jams near 0.38)"
        )
    d = float(min_distance)
    lz = float(thickness)
    side = d / np.sqrt(3.0)
    shape = tuple(max(1, int(np.ceil(length / side))) for length in (lx, ly, lz))
    cell_size = np.array([lx / shape[0], ly / shape[1], lz / shape[2]])
    cells = np.full(shape, -1, np.int64)
    pts = np.empty((n_target, 3))
    kernel = _rsa_kernel()
    n_have, used = 0, 0
    limit = max_candidates or 50 * n_target + 1000
    box = np.array([lx, ly, lz])
    while n_have < n_target:
        if used >= limit:
            raise RuntimeError(
                f"amorphous carbon: only {n_have} of {n_target} atoms placed after {used} "
                "candidates (density too high for min_distance)"
            )
        m = max(1024, int(1.5 * (n_target - n_have)))
        cand = rng.random((m, 3)) * box
        n_have, k = kernel(cand, pts, n_have, n_target, cells, cell_size, box, d * d)
        used += k
    return Atoms(
        numbers=np.full(len(pts), 6), positions=pts, cell=[lx, ly, thickness], pbc=[1, 1, 0]
    )


# -- orientation -----------------------------------------------------------
def orientation_matrix(orientation="random", rng=None) -> np.ndarray:
    """Rotation (3x3, applied as ``r @ R.T``) for ``"random"``, a zone axis or a matrix.

    A zone axis ``(u, v, w)`` (crystal frame) is rotated onto +z (the beam),
    followed by a random rotation about z.
    """
    from scipy.spatial.transform import Rotation

    rng = _rng(rng)
    if orientation is None:
        return np.eye(3)
    if isinstance(orientation, str):
        if orientation == "random":
            return Rotation.random(random_state=rng).as_matrix()
        if orientation == "none":
            return np.eye(3)
        orientation = tuple(int(x) for x in orientation.replace(",", " ").split())
    arr = np.asarray(orientation, dtype=float)
    if arr.shape == (3, 3):
        return arr
    if arr.shape != (3,) or not np.any(arr):
        raise InputError(
            f"orientation must be 'random', a zone axis (u, v, w) or 3x3: {orientation}"
        )
    u = arr / np.linalg.norm(arr)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(u, z)
    s = np.linalg.norm(axis)
    if s < 1e-12:
        r = np.eye(3) if u[2] > 0 else Rotation.from_rotvec([np.pi, 0, 0]).as_matrix()
    else:
        angle = np.arctan2(s, float(u @ z))
        r = Rotation.from_rotvec(axis / s * angle).as_matrix()
    spin = Rotation.from_rotvec([0, 0, rng.uniform(0, 2 * np.pi)]).as_matrix()
    return spin @ r


# -- particles -------------------------------------------------------------
def _lattice_constant(element: str, a: float | None) -> float:
    from ase.data import atomic_numbers, reference_states

    if a:
        return float(a)
    z = atomic_numbers.get(element)
    if z is None:
        raise InputError(f"unknown element {element!r}")
    ref = reference_states[z] or {}
    if ref.get("symmetry") != "fcc":
        raise InputError(
            f"{element} is not fcc in ase's reference states ({ref.get('symmetry')}); "
            "give lattice_constant for an fcc particle or use shape='sphere'"
        )
    return float(ref["a"])


def _fcc111_stack(element: str, a: float, radius: float, sequence: list[int]):
    """Positions of a sphere cut from (111) layers stacked as ``sequence`` (0=A,1=B,2=C).

    Layer frame: x' || [1-10], y' || [11-2], z' || [111]; returned in the cubic
    crystal frame.
    """
    an = a / np.sqrt(2)  # in-plane nearest-neighbour distance
    d111 = a / np.sqrt(3)
    nlay = len(sequence)
    m = int(np.ceil(radius / an)) + 3
    i, j = np.meshgrid(np.arange(-2 * m, 2 * m + 1), np.arange(-2 * m, 2 * m + 1), indexing="ij")
    base = np.stack([an * (i + 0.5 * j), an * np.sqrt(3) / 2 * j], -1).reshape(-1, 2)
    shift = np.array([an / 2, an / (2 * np.sqrt(3))])
    layers = []
    for k, s in enumerate(sequence):
        xy = base - s * shift
        z = (k - (nlay - 1) / 2) * d111
        keep = (xy**2).sum(1) + z**2 <= radius**2
        layers.append(np.column_stack([xy[keep], np.full(keep.sum(), z)]))
    pos = np.concatenate(layers)
    frame = np.array([[1, -1, 0] / np.sqrt(2), [1, 1, -2] / np.sqrt(6), [1, 1, 1] / np.sqrt(3)])
    return pos @ frame  # rows of frame map primed -> cubic


def _stacking(nlay: int, defects, rng) -> list[int]:
    """(111) stacking sequence with twins ('twin') / intrinsic faults ('stacking_fault')."""
    if defects is None:
        defects = []
    if isinstance(defects, str):
        defects = [defects]
    seq = [0]
    step = 1
    # choose fault layers spread over the middle half of the particle
    where = {}
    for d in defects:
        if d not in ("twin", "stacking_fault"):
            raise InputError(f"unknown defect {d!r}: use 'twin' or 'stacking_fault'")
        k = int(rng.integers(max(1, nlay // 4), max(2, 3 * nlay // 4)))
        where[k] = d
    for k in range(1, nlay):
        if where.get(k) == "twin":
            step = -step
        elif where.get(k) == "stacking_fault":
            seq.append((seq[-1] + step) % 3)  # skip one layer of the sequence
            seq[-1] = (seq[-1] + step) % 3
            continue
        seq.append((seq[-1] + step) % 3)
    return seq[:nlay]


def nanoparticle(
    element: str = "Au",
    shape: str = "sphere",
    diameter: float = 50.0,
    defects=None,
    orientation="random",
    lattice_constant: float | None = None,
    rng=None,
):
    """A nanoparticle centred at the origin (ase.Atoms without cell).

    Parameters
    ----------
    element : str
        Chemical symbol (fcc for all shapes but ``sphere``).
    shape : one of :data:`SHAPES`
    diameter : float
        Approximate diameter in Å (for polyhedra the vertex-to-vertex size).
    defects : None, "twin", "stacking_fault" or a list of them
        {111} planar defects (sphere shape, fcc).
    orientation : "random", zone axis (u, v, w), or 3x3 matrix
    rng : np.random.Generator or seed
    """
    from ase import Atoms

    rng = _rng(rng)
    if shape not in SHAPES:
        raise InputError(f"unknown shape {shape!r}; choose one of {SHAPES}")
    if not 2.0 <= diameter <= 500.0:
        raise InputError(f"particle diameter {diameter} Å outside 2..500 Å")
    radius = diameter / 2
    if defects and shape != "sphere":
        raise InputError("planar defects are built for shape='sphere' only")
    if shape == "sphere":
        if defects:
            a = _lattice_constant(element, lattice_constant)
            nlay = int(np.ceil(diameter / (a / np.sqrt(3)))) + 1
            pos = _fcc111_stack(element, a, radius, _stacking(nlay, defects, rng))
            atoms = Atoms(element + str(len(pos)) if len(pos) else "", positions=pos)
        else:
            from ase.build import bulk

            try:
                cell_atoms = (
                    bulk(element, a=lattice_constant, cubic=True)
                    if lattice_constant
                    else bulk(element, cubic=True)
                )
            except Exception:  # e.g. hcp cannot be cubic
                cell_atoms = bulk(element)
            reps = np.ceil(diameter / cell_atoms.cell.lengths()).astype(int) + 2
            big = cell_atoms.repeat(tuple(int(r) for r in reps))
            pos = big.positions - big.cell.sum(0) / 2
            pos = pos[(pos**2).sum(1) <= radius**2]
            atoms = Atoms(numbers=np.full(len(pos), big.numbers[0]), positions=pos)
    else:
        from ase import cluster

        a = _lattice_constant(element, lattice_constant)
        dnn = a / np.sqrt(2)
        if shape in ("octahedron", "truncated_octahedron", "cuboctahedron"):
            length = max(2, int(round(diameter / a)) + 1)
            cutoff = {"octahedron": 0, "truncated_octahedron": length // 3,
                      "cuboctahedron": (length - 1) // 2}[shape]  # fmt: skip
            if shape == "cuboctahedron" and length % 2 == 0:
                length += 1
                cutoff = (length - 1) // 2
            atoms = cluster.Octahedron(element, length, cutoff, latticeconstant=a)
        elif shape == "icosahedron":
            atoms = cluster.Icosahedron(element, max(2, int(round(radius / dnn)) + 1),
                                        latticeconstant=a)  # fmt: skip
        elif shape == "decahedron":
            p = max(2, int(round(radius / dnn / 1.1)) + 1)
            atoms = cluster.Decahedron(element, p, p, 1, latticeconstant=a)
        else:  # wulff
            n = int(np.pi / 6 * diameter**3 * 4 / a**3)
            atoms = cluster.wulff_construction(
                element, [(1, 0, 0), (1, 1, 1), (1, 1, 0)], [1.0, 0.9, 1.1],
                max(13, n), "fcc", rounding="closest", latticeconstant=a,
            )  # fmt: skip
        atoms = Atoms(atoms.numbers, positions=atoms.positions)
    if len(atoms) == 0:
        raise InputError(f"particle of diameter {diameter} Å has no atoms")
    atoms.positions -= atoms.positions.mean(0)
    atoms.positions = atoms.positions @ orientation_matrix(orientation, rng).T
    atoms.info.update(shape=shape, element=element, diameter=float(diameter))
    return atoms


# -- scenes ----------------------------------------------------------------
@dataclass
class Scene:
    """A simulation scene and its particle-only structure (same cell)."""

    atoms: object  # ase.Atoms, particle_id array 0 = substrate
    particles: object  # ase.Atoms, particle_id 1..n
    info: dict = field(default_factory=dict)

    @property
    def n_particles(self) -> int:
        ids = self.particles.arrays.get("particle_id", np.zeros(0))
        return int(ids.max()) if len(ids) else 0

    def write(self, path) -> tuple[str, str]:
        """Write ``path`` (extended xyz) and ``<stem>_particles<suffix>``; return both paths."""
        from pathlib import Path

        import ase.io

        from ..core.outputs import atomic_file

        path = Path(path)
        ppath = path.with_name(path.stem + "_particles" + path.suffix)
        fmt = _ase_format(path)
        for dest, atoms in ((ppath, self.particles), (path, self.atoms)):
            with atomic_file(dest) as tmp:  # a killed run leaves no half-written file
                ase.io.write(tmp, atoms, format=fmt)
        return str(path), str(ppath)


def _ase_format(path) -> str | None:
    """ase's format for ``path``'s suffix (``.xyz`` -> extended xyz)."""
    from ase.io.formats import filetype

    suffix = str(path).lower().rsplit(".", 1)[-1]
    if suffix in ("xyz", "extxyz"):
        return "extxyz"
    try:
        return filetype(str(path), read=False)
    except Exception:  # unknown suffix: let ase decide and complain
        return None


def build_scene(
    extent: tuple[float, float] = (102.4, 102.4),
    substrate_thickness: float = 50.0,
    n_particles: int = 1,
    element: str = "Au",
    shape: str = "sphere",
    particle_diameter: float | list = 50.0,
    defects=None,
    orientation="random",
    placement: str = "on",
    embed_depth: float = 5.0,
    min_gap: float = 5.0,
    substrate_density: float = 2.0,
    min_distance: float = 1.4,
    vacuum: float = 2.0,
    position=None,
    rng=None,
) -> Scene:
    """Particles on (or embedded in) amorphous carbon in an orthorhombic cell.

    Parameters
    ----------
    extent : (Lx, Ly) Å
    substrate_thickness : Å (0 for no substrate)
    n_particles : int
    particle_diameter : Å, or one value per particle
    placement : ``"on"`` (touching the substrate's entrance surface) or
        ``"embedded"`` (sunk ``embed_depth`` Å into it; carbon within
        2 Å of a particle atom is removed)
    min_gap : Å, minimum gap between the particles' projected outlines and to
        the cell edge
    position : (x, y) of the single particle's centre (default: random/centre)
    vacuum : Å above and below

    Notes
    -----
    The beam enters at z = 0: vacuum, particles, substrate, vacuum.
    """
    from ase import Atoms
    from scipy.spatial import cKDTree

    rng = _rng(rng)
    lx, ly = float(extent[0]), float(extent[1])
    if placement not in ("on", "embedded"):
        raise InputError("placement must be 'on' or 'embedded'")
    diams = (
        list(particle_diameter)
        if isinstance(particle_diameter, (list, tuple))
        else [particle_diameter] * n_particles
    )
    if len(diams) != n_particles:
        raise InputError("give one particle_diameter per particle")
    parts = [nanoparticle(element, shape, float(d), defects, orientation, rng=rng) for d in diams]
    # lateral placement with a minimum gap (rejection sampling)
    radii = [float(np.sqrt((p.positions[:, :2] ** 2).sum(1)).max()) for p in parts]
    centres: list[np.ndarray] = []
    for i, r in enumerate(radii):
        lo = r + min_gap / 2
        if 2 * lo > min(lx, ly):
            raise InputError(
                f"particle {i + 1} ({2 * r:.0f} Å wide) does not fit in {lx:g} x {ly:g} Å "
                f"with a {min_gap:g} Å gap"
            )
        if position is not None and n_particles == 1:
            centres.append(np.asarray(position, dtype=float))
            continue
        if n_particles == 1:
            centres.append(np.array([lx / 2, ly / 2]))
            continue
        for _ in range(5000):
            c = rng.uniform((lo, lo), (lx - lo, ly - lo))
            if all(np.linalg.norm(c - o) >= r + radii[j] + min_gap for j, o in enumerate(centres)):
                centres.append(c)
                break
        else:
            raise InputError(
                f"cannot place {n_particles} particles with a {min_gap:g} Å gap in "
                f"{lx:g} x {ly:g} Å; use fewer or smaller particles or a larger extent"
            )
    zmin = [float(p.positions[:, 2].min()) for p in parts]
    heights = [float(np.ptp(p.positions[:, 2])) for p in parts]
    top = vacuum + max(heights, default=0.0)  # substrate entrance surface
    if placement == "embedded":
        top -= min(embed_depth, substrate_thickness)
        top = max(top, vacuum)
    ppos, pnum, pid = [], [], []
    for i, (p, c, z0, h) in enumerate(zip(parts, centres, zmin, heights)):
        pos = p.positions.copy()
        pos[:, :2] += c
        # particle bottom sits on the substrate surface (or embed_depth below it)
        bottom = (
            vacuum + max(heights)
            if placement == "on"
            else top + min(embed_depth, substrate_thickness)
        )
        pos[:, 2] += bottom - (z0 + h)
        ppos.append(pos)
        pnum.append(p.numbers)
        pid.append(np.full(len(p), i + 1))
    ppos = np.concatenate(ppos) if ppos else np.zeros((0, 3))
    pnum = np.concatenate(pnum) if pnum else np.zeros(0, int)
    pid = np.concatenate(pid) if pid else np.zeros(0, int)
    if len(ppos):
        shift = vacuum - ppos[:, 2].min()
        ppos[:, 2] += shift
        top += shift
    lz = top + substrate_thickness + vacuum
    if len(ppos):
        lz = max(lz, float(ppos[:, 2].max()) + vacuum)
    cell = [lx, ly, lz]
    if substrate_thickness > 0:
        sub = amorphous_carbon((lx, ly), substrate_thickness, substrate_density, min_distance, rng)
        spos = sub.positions.copy()
        spos[:, 2] += top
        if len(ppos):
            tree = cKDTree(ppos)
            hit = tree.query_ball_point(spos, 2.0, return_length=True)
            spos = spos[hit == 0]
    else:
        spos = np.zeros((0, 3))
    ppos[:, :2] %= (lx, ly)
    particles = Atoms(numbers=pnum, positions=ppos, cell=cell, pbc=[1, 1, 0])
    particles.set_array("particle_id", pid.astype(int))
    atoms = Atoms(
        numbers=np.concatenate([pnum, np.full(len(spos), 6)]).astype(int),
        positions=np.concatenate([ppos, spos]),
        cell=cell,
        pbc=[1, 1, 0],
    )
    atoms.set_array("particle_id", np.concatenate([pid, np.zeros(len(spos), int)]).astype(int))
    info = dict(
        element=element,
        shape=shape,
        n_particles=n_particles,
        particle_diameters=[float(d) for d in diams],
        substrate_thickness=float(substrate_thickness),
        placement=placement,
        n_substrate_atoms=int(len(spos)),
        n_particle_atoms=int(len(ppos)),
    )
    atoms.info.update({k: str(v) if isinstance(v, list) else v for k, v in info.items()})
    return Scene(atoms, particles, info)
