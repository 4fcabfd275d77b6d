"""Ranging, composition, voxelization, slicing: pinned values, real data, synthetic truth."""

from __future__ import annotations

import numpy as np
import pytest

from napari_interfaces.apt.pointcloud import PointCloud
from napari_interfaces.apt.ranging import Range, RangeTable, composition_of_cloud
from napari_interfaces.apt.slicing import slab, slab_points
from napari_interfaces.apt.spectrum import mass_spectrum
from napari_interfaces.apt.synthetic import synthesize
from napari_interfaces.apt.voxelize import delocalize, grid_for_bounds, voxelize
from napari_interfaces.core.geometry import Grid

CR_O = RangeTable(
    [
        Range(25.0, 27.5, "Cr", {"Cr": 1}),
        Range(15.5, 16.5, "O", {"O": 1}),
        Range(41.5, 43.5, "CrO2", {"Cr": 1, "O": 2}),
        Range(57.5, 61.5, "Cr2O", {"Cr": 2, "O": 1}),
    ]
)


def test_molecular_ions_are_decomposed():
    mass = np.array([26, 26, 16, 42, 42, 59, 99], dtype=np.float32)
    cloud = PointCloud(np.zeros((7, 3), np.float32), mass)
    comp = composition_of_cloud(cloud, CR_O)
    assert comp.species_counts == {"Cr": 2, "O": 1, "CrO2": 2, "Cr2O": 1}
    # atoms: Cr 2 + 2 + 2 = 6, O 1 + 4 + 1 = 6
    assert comp.element_counts == {"Cr": 6.0, "O": 6.0}
    assert comp.atomic_percent == {"Cr": 50.0, "O": 50.0}
    assert (comp.n_ions, comp.ranged, comp.unranged) == (7, 6, 1)
    assert comp.ranged_fraction == pytest.approx(6 / 7)


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def si(request):
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set NAPARI_INTERFACES_SHARED_DATA)")
    from napari_interfaces.io.apt_pointcloud import read_pos
    from napari_interfaces.io.ranges import read_rng, read_rrng

    d = SHARED_DATA / "apt"
    return read_pos(d / "Si.pos"), read_rrng(d / "Si.RRNG"), read_rng(d / "Si.RNG")


def test_real_si_dataset_facts(si, shared_data):
    cloud, rrng, rng = si
    assert cloud.n_ions == 945_211
    b = cloud.bounds()
    assert b["x"] == pytest.approx((-20.4336, 19.7064), abs=1e-4)
    assert b["y"] == pytest.approx((-17.8572, 21.2830), abs=1e-4)
    assert b["z"] == pytest.approx((-75.0807, -0.0200), abs=1e-4)
    assert cloud.mass_range() == pytest.approx((0.0, 378.3013), abs=1e-4)
    assert rrng.species == ["Si", "Cr", "Cu", "C", "O", "CrO", "CrO2", "Cr2O"]
    assert sorted(rng.species) == sorted(rrng.species)
    ca, cb = composition_of_cloud(cloud, rrng), composition_of_cloud(cloud, rng)
    # both range files give the same composition, ion for ion
    assert ca.species_counts == cb.species_counts and ca.unranged == cb.unranged == 68_201
    assert ca.species_counts == {
        "Si": 785_076,
        "Cr": 1_207,
        "Cu": 683,
        "C": 706,
        "O": 1_355,
        "CrO": 1_681,
        "CrO2": 642,
        "Cr2O": 85_660,
    }
    assert ca.atomic_percent["Si"] == pytest.approx(74.6770, abs=1e-4)
    assert ca.atomic_percent["Cr"] == pytest.approx(16.6319, abs=1e-4)
    assert ca.atomic_percent["O"] == pytest.approx(8.5590, abs=1e-4)
    assert ca.ranged_fraction == pytest.approx(877_010 / 945_211)
    # Cr arrives mostly in molecular ions: 173,643 of 174,850 Cr atoms (99.3 %)
    cr_molecular = 1_681 + 642 + 2 * 85_660
    assert ca.element_counts["Cr"] == 174_850
    assert cr_molecular / ca.element_counts["Cr"] == pytest.approx(0.99310, abs=1e-5)


def test_real_si_voxelized_interface_normal_to_z(si):
    cloud, rrng, _ = si
    vox = voxelize(cloud, rrng, voxel_size=2.0)
    assert vox.shape == (38, 20, 21)
    assert vox.grid.origin == (-75.0, -17.0, -21.0)
    assert vox.total_ions() == 945_211
    assert vox.total_composition() == composition_of_cloud(cloud, rrng)  # no second pass
    # the Cr-oxide cap is on top (z > -19 nm), Si below; profile along z in 2 nm bins
    cr = vox.element_counts("Cr").sum(axis=(1, 2)) / vox.total_atoms().sum(axis=(1, 2)) * 100
    assert cr[:28].max() < 1.0  # Si substrate, z < -19 nm
    assert cr[28:30] == pytest.approx([6.1, 22.9], abs=0.05)  # the interface, ~4 nm wide
    assert cr[32:].min() > 58 and cr[32:].max() < 64  # the oxide (Cr ~ 2 O ~ 61:31)


# ----------------------------------------------------------------------------- voxelization
def _toy_cloud(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform([-5, -4, 0], [5, 4, 12], size=(n, 3)).astype(np.float32)
    mass = rng.choice([26.0, 16.0, 42.0, 59.0, 99.0], size=n).astype(np.float32)
    return PointCloud(xyz, mass)


def test_voxelize_counts_and_composition_by_hand():
    xyz = np.array([[0.2, 0.2, 0.2], [0.7, 0.1, 0.9], [1.5, 0.5, 0.5], [1.2, 0.5, 0.5]], "f4")
    cloud = PointCloud(xyz, np.array([26, 42, 59, 99], "f4"))
    v = voxelize(cloud, CR_O, voxel_size=1.0)
    assert v.shape == (1, 1, 2) and v.grid.origin == (0.5, 0.5, 0.5)
    assert v.species_counts("Cr")[0, 0].tolist() == [1, 0]
    assert v.element_counts("O")[0, 0].tolist() == [2, 1]
    assert v.element_counts("Cr")[0, 0].tolist() == [2, 2]
    assert v.unranged[0, 0].tolist() == [0, 1]
    assert v.composition("Cr")[0, 0].tolist() == pytest.approx([50.0, 100 * 2 / 3])


def test_voxelize_numba_and_numpy_agree_and_chunking(monkeypatch):
    cloud = _toy_cloud()
    a = voxelize(cloud, CR_O, voxel_size=(1.5, 1.0, 0.7), chunk_size=3_001)
    monkeypatch.setenv("NAPARI_INTERFACES_NO_NUMBA", "1")
    b = voxelize(cloud, CR_O, voxel_size=(1.5, 1.0, 0.7))
    assert np.array_equal(a.counts, b.counts) and np.array_equal(a.unranged, b.unranged)
    assert a.total_ions() == 20_000 and a.shape == (8, 8, 16)


def test_voxelize_given_grid_counts_outside():
    cloud = _toy_cloud()
    g = Grid((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
    v = voxelize(cloud, CR_O, grid=(g, (4, 4, 5)))
    inside = ((cloud.xyz >= 0) & (cloud.xyz < [5, 4, 4])).all(axis=1)
    assert v.n_outside == int((~inside).sum())
    assert v.total_ions() == int(inside.sum())


def test_delocalization_conserves_counts_and_smooths():
    cloud = _toy_cloud()
    plain = voxelize(cloud, CR_O, voxel_size=1.0)
    smooth = voxelize(cloud, CR_O, voxel_size=1.0, delocalization=(1.5, 3.0, 3.0))
    assert smooth.delocalization_nm == (1.5, 3.0, 3.0)
    for i in range(len(CR_O.species)):
        assert smooth.counts[i].sum(dtype=np.float64) == pytest.approx(
            plain.counts[i].sum(dtype=np.float64), rel=1e-5
        )
    assert smooth.total_atoms().std() < 0.5 * plain.total_atoms().std()
    # a point source spreads with sigma = d / 3 voxels
    vol = np.zeros((1, 21, 21, 21), np.float32)
    vol[0, 10, 10, 10] = 1000
    out = delocalize(vol, Grid((0, 0, 0), (1, 1, 1)), 6.0)[0]
    assert out.sum() == pytest.approx(1000, rel=1e-5)
    line = out[10, 10]
    var = (line * (np.arange(21) - 10) ** 2).sum() / line.sum()
    assert var == pytest.approx(4.0, rel=0.02)


def test_grid_edges_aligned_to_voxel_multiples():
    g, shape = grid_for_bounds({"x": (-0.3, 2.2), "y": (0.0, 0.9), "z": (-5.0, -4.1)}, 0.5)
    assert g.origin == (-4.75, 0.25, -0.25) and shape == (2, 2, 6)


def test_slab_and_points_and_spectrum():
    cloud = _toy_cloud()
    v = voxelize(cloud, CR_O, voxel_size=1.0)
    img, g2 = slab(v.total_atoms(), v.grid, axis="x", position_nm=0.0, thickness_nm=3.0)
    assert img.shape == (12, 8) and g2.axes == "zy" and g2.spacing == (1.0, 1.0)
    sum_img, _ = slab(
        v.unranged, v.grid, axis="y", position_nm=0.0, thickness_nm=2.0, reduce="sum"
    )
    idx = slab_points(cloud, "y", 0.0, 2.0)
    assert sum_img.sum() == pytest.approx((cloud.mass[idx] == 99).sum())
    with pytest.raises(ValueError, match="outside"):
        slab(v.total_atoms(), v.grid, axis="z", position_nm=100.0)
    edges, counts = mass_spectrum(cloud.mass, bin_width=0.5, mass_max=100)
    assert counts.sum() == 20_000 and counts[int(26 / 0.5)] == (cloud.mass == 26).sum()


# ----------------------------------------------------------------------------- synthetic
@pytest.fixture(scope="module")
def layered():
    return synthesize("layered", size_nm=(10, 10, 24), seed=7, width_nm=1.0)


def test_synthetic_is_seeded_and_pinned(layered):
    again = synthesize("layered", size_nm=(10, 10, 24), seed=7, width_nm=1.0)
    assert np.array_equal(layered.cloud.xyz, again.cloud.xyz)
    assert np.array_equal(layered.cloud.mass, again.cloud.mass)
    assert layered.cloud.n_ions == 114_428
    assert layered.ranges.elements == ["Ni", "Al", "Cr"]
    assert len(layered.ranges) == 20
    assert layered.params["plate_centres_z_nm"][:2] == [6.0, 18.0]


def test_synthetic_truth_matches_measurement(layered):
    s, cloud = layered, layered.cloud
    te, d = cloud.columns["true_element"], cloud.columns["signed_distance_nm"]
    # efficiency: 91.5 atoms/nm3 * 2400 nm3 * 0.5
    assert (te >= 0).sum() / 2400 == pytest.approx(4 / 0.352**3 * 0.5, rel=0.02)
    assert (te < 0).mean() == pytest.approx(0.03, abs=0.003)  # background
    # generated species follow the profile: overall Al equals the mean of c_Al(d) up to
    # the L1_2 order (Al only on cube-corner planes; 6 nm plates hold whole planes)
    real = te >= 0
    assert (te[real] == 1).mean() * 100 == pytest.approx(
        s.true_profile(d[real].astype(np.float64), "Al").mean(), abs=0.6
    )
    # ranging recovers the truth in each phase (background and tails cost < 0.6 at.%)
    sp = s.ranges.species_of(cloud.mass)
    for sel in (d > 2.0, d < -2.0):
        measured = np.bincount(sp[sel & (sp >= 0)], minlength=3)
        true = np.bincount(te[sel & real], minlength=3)
        assert measured / measured.sum() * 100 == pytest.approx(true / true.sum() * 100, abs=0.6)
    # ranges matter: most background is unranged, most real ions are ranged
    assert (sp[te < 0] < 0).mean() > 0.85 and (sp[te >= 0] >= 0).mean() > 0.95
    # the analytic profile: 10-90 % width
    assert s.true_profile(-0.5, "Al") == pytest.approx(5 + 0.1 * 14)
    assert s.true_profile(0.5, "Al") == pytest.approx(5 + 0.9 * 14)


def test_synthetic_noise_is_anisotropic(layered):
    # measured z of ions near the plate faces spreads less than x
    s = synthesize(
        "layered",
        size_nm=(6, 6, 12),
        seed=1,
        noise_lateral_nm=0.3,
        noise_depth_nm=0.02,
        background=0.0,
        width_nm=0.0,
    )
    te = s.cloud.columns["true_element"]
    xyz = s.cloud.xyz.astype(np.float64)
    # (002) lattice planes (spacing a/2) stay sharp in z, are smeared out in x
    phase_z = (xyz[:, 2] / 0.176) % 1.0
    phase_x = (xyz[:, 0] / 0.176) % 1.0
    near = lambda p: (np.minimum(p, 1 - p) < 0.15).mean()  # noqa: E731
    assert near(phase_z) > 0.75 and near(phase_x) < 0.4 and te.min() >= 0


@pytest.mark.parametrize("geometry, fraction", [("isolated", 0.1106), ("interconnected", 0.4727)])
def test_synthetic_geometries_phase_volume(geometry, fraction):
    s = synthesize(geometry, size_nm=(16, 16, 16), seed=3)
    phase, grid = s.phase_volume(voxel_size=1.0)
    assert phase.shape == (16, 16, 16) and grid.origin == (0.5, -7.5, -7.5)
    assert phase.mean() == pytest.approx(fraction, abs=1e-4)
    v = voxelize(s.cloud, s.ranges, voxel_size=1.0)
    truth, _ = s.phase_volume(v.grid, v.shape)
    al = v.composition("Al")
    # voxel composition separates the phases (Al 5 vs 19 at.%)
    assert al[truth == 1].mean() > al[truth == 0].mean() + 7


def test_synthetic_write(tmp_path):
    from napari_interfaces.io.apt_pointcloud import read_pos
    from napari_interfaces.io.apt_volume import read_volume_tiff
    from napari_interfaces.io.ranges import read_rrng

    s = synthesize("isolated", size_nm=(8, 8, 8), seed=2, n_precipitates=1)
    paths = s.write(tmp_path, "s")
    assert read_pos(paths["pos"]).n_ions == s.cloud.n_ions
    assert read_rrng(paths["rrng"]).species == s.ranges.species
    vol = read_volume_tiff(paths["phase"])
    assert vol.grid.spacing == (1.0, 1.0, 1.0) and vol.data.shape == (8, 8, 8)
    rows = paths["profile"].read_text().splitlines()
    assert rows[0] == "signed_distance_nm,gamma_prime_fraction,Ni_at_pct,Al_at_pct,Cr_at_pct"
    assert rows[101].startswith("0.000,0.500000,77.500000,12.000000,10.500000")


def test_bounds_follow_in_memory_edits():
    cloud = _toy_cloud(100)
    assert cloud.bounds()["x"][1] < 5
    cloud.xyz[0, 0] = 50.0
    assert cloud.bounds()["x"][1] == 50.0


# ---------------------------------------------------------------------- one loader, one voxelizer
def test_open_dataset_provenance_on_real_data(shared_data):
    from napari_interfaces.apt.dataset import open_dataset

    ds = open_dataset(shared_data / "apt" / "Si.pos")  # finds the range file beside it
    p = ds.provenance
    assert p["format"] == "pos" and p["n_ions"] == 945_211
    assert p["range_file"].lower().endswith(".rrng")
    assert ds.ranged_fraction == pytest.approx(0.927846, abs=1e-6)
    assert ds.composition.atomic_percent["Cr"] == pytest.approx(16.6319, abs=1e-4)
    assert ds.warnings == []


def test_open_dataset_without_ranges(tmp_path):
    from napari_interfaces.apt.dataset import open_dataset
    from napari_interfaces.core.errors import InputError
    from napari_interfaces.io.apt_pointcloud import write_pos

    cloud = PointCloud(
        np.random.default_rng(0).random((50, 3), dtype=np.float32), np.full(50, 27, "f4")
    )
    path = write_pos(tmp_path / "x.pos", cloud)
    ds = open_dataset(path)
    assert ds.ranges is None and ds.ranged_fraction is None
    with pytest.raises(InputError, match="no range file"):
        open_dataset(path, require_ranges=True)


def test_atoms_and_ions_voxelize_on_the_same_grid():
    """The Interfaces pipeline (atoms) and the Explorer (ions) share one voxelizer and grid."""
    from napari_interfaces.apt.dataset import APTDataset
    from napari_interfaces.apt.interfaces import atoms_from_cloud, volume_from_atoms

    s = synthesize("isolated", size_nm=(8, 8, 8), seed=3)
    vox = voxelize(APTDataset.from_arrays(s.cloud, s.ranges), voxel_size=1.0)
    from_ions = vox.composition_volume()
    from_atoms = volume_from_atoms(atoms_from_cloud(s.cloud, s.ranges), 1.0)
    assert from_atoms.grid == from_ions.grid == vox.grid
    # edges at multiples of the voxel size
    assert all(abs((o - 0.5) % 1.0) < 1e-9 for o in vox.grid.origin)
    np.testing.assert_array_equal(from_atoms.counts, from_ions.counts)
    assert from_ions.elements == list(s.ranges.elements)


def test_voxelize_refuses_a_grid_over_the_memory_limit(monkeypatch):
    from napari_interfaces.core.errors import SizeLimitError

    s = synthesize("layered", size_nm=(8, 8, 8), seed=1)
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_BYTES", "100000")
    with pytest.raises(SizeLimitError, match="voxel grid"):
        voxelize(s.cloud, s.ranges, voxel_size=0.2)


def test_voxelize_stops_at_the_next_chunk_when_cancelled():
    from napari_interfaces.core.progress import Cancelled, Progress

    s = synthesize("layered", size_nm=(8, 8, 8), seed=1)
    done = []

    def cb(d, total, desc):
        done.append(d)
        if d >= 2:
            progress.cancel()

    progress = Progress(cb)
    with pytest.raises(Cancelled):
        voxelize(s.cloud, s.ranges, chunk_size=500, progress=progress)
    n_chunks = -(-s.cloud.n_ions // 500)
    assert max(done) < n_chunks


def test_public_api_is_lazy():
    import json
    import subprocess
    import sys

    code = (
        "import sys, json, napari_interfaces.apt as a, napari_interfaces.io as i\n"
        "[getattr(a, n) for n in a.__all__]; [getattr(i, n) for n in i.__all__]\n"
        "print(json.dumps(sorted(m for m in ('torch', 'dask', 'distributed', 'napari', 'qtpy')"
        " if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
