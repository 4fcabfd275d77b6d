"""Structures, labels, detector and CLI of the HRTEM simulator."""

from __future__ import annotations

import time

import numpy as np
import pytest

from napari_interfaces.simulate import structures as S
from napari_interfaces.simulate.detector import apply_detector, crop, mtf_curve, resample
from napari_interfaces.simulate.labels import atom_labels, exit_wave_labels, instance_labels


def test_amorphous_carbon_density_min_distance_and_speed():
    from scipy.spatial import cKDTree

    t0 = time.perf_counter()
    c = S.amorphous_carbon((40.0, 40.0), 20.0, density=2.0, min_distance=1.4, rng=0)
    assert time.perf_counter() - t0 < 10
    # 2 g/cm3 -> 0.1003 atoms/Å3
    assert len(c) == pytest.approx(0.10028 * 40 * 40 * 20, rel=2e-3)
    d = cKDTree(c.positions, boxsize=(40, 40, 1e6)).query(c.positions, 2)[0][:, 1]
    assert d.min() >= 1.4 - 1e-9
    assert c.positions[:, 2].min() >= 0 and c.positions[:, 2].max() <= 20


def test_amorphous_carbon_python_fallback_gives_the_same_atoms(monkeypatch):
    """The numba kernel and the pure-Python RSA accept the same candidates."""
    compiled = S.amorphous_carbon((12.0, 10.0), 8.0, rng=3)
    monkeypatch.setenv("NAPARI_INTERFACES_NO_NUMBA", "1")  # core.jit: the Python fallback
    python = S.amorphous_carbon((12.0, 10.0), 8.0, rng=3)
    np.testing.assert_array_equal(compiled.positions, python.positions)
    with pytest.raises(ValueError, match="too large"):
        S.amorphous_carbon((10.0, 10.0), 5.0, density=2.0, min_distance=2.5)


def test_fcc_stacking_builder_is_fcc_and_twin_is_mirror():
    pos = S._fcc111_stack("Au", 4.08, 9.0, [0, 1, 2] * 4)
    u = (pos - pos[0]) / 4.08 * 2
    assert np.abs(u - np.round(u)).max() < 1e-9
    assert set(np.round(u).sum(1).astype(int) % 2) == {0}
    rng = np.random.default_rng(0)
    seq = S._stacking(12, "twin", rng)
    steps = np.diff(seq) % 3
    assert set(steps) == {1, 2}  # stacking direction reverses once
    assert np.sum(np.diff(steps) != 0) == 1
    sf = S._stacking(12, "stacking_fault", rng)
    assert len(sf) == 12 and set(np.diff(sf) % 3) == {1, 2}


@pytest.mark.parametrize("shape", S.SHAPES)
def test_nanoparticle_shapes(shape):
    p = S.nanoparticle("Au", shape, 20.0, orientation=(1, 1, 0), rng=0)
    ext = np.ptp(p.positions, 0).max()
    assert 12 < ext < 28
    assert set(p.get_chemical_symbols()) == {"Au"}


def test_zone_axis_orientation_puts_columns_along_z():
    p = S.nanoparticle("Au", "sphere", 20.0, orientation=(0, 0, 1), rng=0)
    # along [001] fcc atoms form columns: few distinct projected positions
    xy = np.round(p.positions[:, :2], 2)
    assert len(np.unique(xy, axis=0)) < len(p) / 3


def test_scene_particles_ids_and_gap():
    sc = S.build_scene(extent=(80, 80), substrate_thickness=10, n_particles=3,
                       particle_diameter=15, min_gap=5, rng=2)  # fmt: skip
    ids = sc.atoms.arrays["particle_id"]
    assert set(np.unique(ids)) == {0, 1, 2, 3}
    assert len(sc.particles) == int((ids > 0).sum())
    cents = [sc.particles.positions[sc.particles.arrays["particle_id"] == i, :2].mean(0)
             for i in (1, 2, 3)]  # fmt: skip
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.linalg.norm(cents[i] - cents[j]) > 15 + 5 - 2
    lengths = sc.atoms.cell.lengths()
    assert np.all(sc.atoms.positions >= -1e-9) and np.all(sc.atoms.positions <= lengths + 1e-9)


def test_embedded_scene_removes_overlapping_carbon():
    from scipy.spatial import cKDTree

    sc = S.build_scene(extent=(40, 40), substrate_thickness=15, particle_diameter=15,
                       placement="embedded", embed_depth=5, rng=3)  # fmt: skip
    ids = sc.atoms.arrays["particle_id"]
    c = sc.atoms.positions[ids == 0]
    d, _ = cKDTree(sc.particles.positions).query(c)
    assert d.min() >= 2.0
    assert sc.particles.positions[:, 2].max() > c[:, 2].min() + 3  # really sunk in


def test_too_many_particles_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot place"):
        S.build_scene(extent=(40, 40), substrate_thickness=0, n_particles=6,
                      particle_diameter=15, rng=0)  # fmt: skip


def test_labels_from_atoms_and_exit_wave():
    pos = np.array([[10.0, 10.0, 0], [12.0, 10.0, 0], [30.0, 30.0, 0]])
    mask = atom_labels(pos, (400, 400), (0.1, 0.1), radius=1.5)
    assert mask[100, 110] == 1 and mask[100, 200] == 0
    area = mask.sum() * 0.01
    assert 2 * np.pi * 1.5**2 < area < 2 * np.pi * 1.5**2 + 2 * 3 * 2.0
    inst = instance_labels(mask, pos, [1, 1, 2], (0.1, 0.1))
    assert inst[100, 110] == 1 and inst[300, 300] == 2
    waves = np.ones((3, 100, 100), np.complex64)
    waves[:2, 40:60, 40:60] = np.exp(1j * 0.5)  # 2 of 3 phonon configs above pi/12
    waves[2, 10:20, 10:20] = np.exp(1j * 0.5)  # minority only
    m = exit_wave_labels(waves, (0.1, 0.1), smoothing=0.2)
    assert m[50, 50] == 1 and m[15, 15] == 0 and m[5, 5] == 0


def test_exit_wave_labels_of_a_particle():
    from napari_interfaces.simulate.hrtem import HRTEMSimulator, make_labels

    sc = S.build_scene(extent=(40, 40), substrate_thickness=0, particle_diameter=30, rng=0)
    sim = HRTEMSimulator(sc.particles, sc.particles, sampling=0.15, device="numpy")
    mask, inst = make_labels(sim, "exit_wave")
    area = mask.sum() * 0.15**2
    assert 0.6 * np.pi * 15**2 < area < 1.3 * np.pi * 15**2
    assert set(np.unique(inst)) == {0, 1}


def test_label_pass_shortcuts_give_the_full_grid_labels():
    """The particle-only exit wave for the labels, three ways: shared with the
    scene's pass (particles on the entrance side, the default), in a window
    around the particles, and on the full grid as a separate pass. Same labels."""
    from napari_interfaces.simulate.hrtem import HRTEMSimulator, make_labels

    sc = S.build_scene(
        extent=(40, 36), substrate_thickness=10, particle_diameter=14, shape="cuboctahedron", rng=2
    )
    masks, waves = {}, {}
    for how, margin in (("shared", 8.0), ("window", 8.0), ("full", 0.0)):
        sim = HRTEMSimulator(sc.atoms, sc.particles, energy_kv=300, sampling=0.2, seed=1)
        sim.label_margin = margin
        if how != "shared":
            sim._shared_branch = lambda: None
        masks[how] = make_labels(sim, "exit_wave")[0]
        waves[how] = sim.particle_exit_waves()
    assert waves["shared"].timings["label_pass"] == "shared"
    assert waves["window"].timings["label_window"][0] < waves["full"].shape[0]
    assert "label_window" not in waves["full"].timings
    assert masks["full"].sum() > 100
    # sharing is exact: the slices before the substrate are the same slices
    np.testing.assert_allclose(waves["shared"].waves, waves["full"].waves, atol=2e-5)
    np.testing.assert_array_equal(masks["shared"], masks["full"])
    np.testing.assert_array_equal(masks["window"], masks["full"])
    assert np.abs(waves["window"].waves - waves["full"].waves).max() < 0.05


def test_branched_multislice_when_the_substrate_comes_first():
    """Carbon on the entrance side: nothing is shared, the branch still equals a
    separate particle-only pass."""
    from napari_interfaces.simulate.multislice import multislice
    from napari_interfaces.simulate.potential import ProjectedPotential

    sc = S.build_scene(extent=(24, 24), substrate_thickness=8, particle_diameter=10, rng=5)
    pos = sc.atoms.positions.copy()
    lz = sc.atoms.cell.lengths()[2]
    pos[:, 2] = lz - pos[:, 2]  # flip along the beam
    cell = sc.atoms.cell.lengths()
    branch = sc.atoms.arrays["particle_id"] > 0
    full = ProjectedPotential(pos, sc.atoms.numbers, cell, 0.2, 2.0)
    alone = ProjectedPotential(pos[branch], sc.atoms.numbers[branch], cell, 0.2, 2.0)
    both = multislice(full, 300, branch=branch)
    w, wb = both.waves[0], both.branch_waves[0]
    ref = multislice(alone, 300, trailing_vacuum=False).waves[0]
    assert multislice(full, 300).branch_waves is None  # one result type, with or without branch
    np.testing.assert_allclose(wb, ref, atol=2e-5)
    np.testing.assert_allclose(w, multislice(full, 300).waves[0], atol=2e-5)
    assert np.angle(ref).max() > 0.2


def test_detector_noise_mtf_resample_crop():
    rng = np.random.default_rng(0)
    img = np.ones((128, 128), np.float32)
    noisy = apply_detector(img, (0.1, 0.1), dose=1e4, rng=rng)
    # 100 electrons per pixel: relative std 0.1
    assert noisy.mean() == pytest.approx(1.0, abs=0.01)
    assert noisy.std() == pytest.approx(0.1, rel=0.05)
    assert mtf_curve(0.0) == 1.0 and mtf_curve(0.5, q0=0.5) == pytest.approx(0.5)
    blurred = apply_detector(noisy, (0.1, 0.1), mtf=dict(q0=0.3, c=0.0, power=2))
    assert blurred.std() < noisy.std() / 2
    small, samp = resample(np.full((128, 128), 2.0, np.float32), (0.1, 0.1), 0.2)
    assert small.shape == (64, 64) and samp == (0.2, 0.2) and np.allclose(small, 2.0, atol=1e-5)
    assert crop(noisy, (32, 16)).shape == (32, 16)
    with pytest.raises(ValueError, match="dose"):
        apply_detector(img, (0.1, 0.1), dose=-1)


def test_cli_structure_and_image(tmp_path, capsys):
    import tifffile

    from napari_interfaces.cli import main

    scene = tmp_path / "scene.xyz"
    assert main(["simulate", "structure", "--extent", "30", "30", "--substrate-thickness", "8",
                 "--diameter", "20", "--orientation", "1 1 0", "--seed", "1", "--out", str(scene)]) == 0  # fmt: skip
    assert (tmp_path / "scene_particles.xyz").is_file()
    out = tmp_path / "img.tif"
    rc = main(["simulate", "image", str(scene), "--energy-kv", "200", "--sampling", "0.1",
               "--slice-thickness", "2", "--defocus", "100", "--cs", "1e5", "--device", "numpy",
               "--out", str(out), "--exit-wave", str(tmp_path / "w.npy"),
               "--labels", str(tmp_path / "l.tif"), "--label-method", "atoms",
               "--dose", "1000", "--seed", "0"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "multislice" in text and "potential" in text and "total" in text
    img = tifffile.imread(out)
    lab = tifffile.imread(tmp_path / "l.tif")
    assert img.shape == lab.shape == (300, 300)
    assert set(np.unique(lab)) == {0, 1}
    assert np.load(tmp_path / "w.npy").dtype == np.complex64


def test_cli_bad_input(tmp_path, capsys):
    from ase import Atoms

    from napari_interfaces.cli import main

    bad = tmp_path / "nocell.xyz"
    Atoms("Au", positions=[[0, 0, 0]]).write(bad)
    assert main(["simulate", "image", str(bad), "--out", str(tmp_path / "x.npy")]) == 2
    assert "no 3D cell" in capsys.readouterr().err
    out = tmp_path / "outside.xyz"
    Atoms("Au", positions=[[50, 0, 0]], cell=[10, 10, 10]).write(out)
    assert main(["simulate", "image", str(out), "--out", str(tmp_path / "x.npy")]) == 2
    assert "outside the cell" in capsys.readouterr().err
    ok = tmp_path / "ok.xyz"
    Atoms("Au", positions=[[5, 5, 5]], cell=[10, 10, 10]).write(ok)
    assert main(["simulate", "image", str(ok), "--slice-thickness", "5000",
                 "--out", str(tmp_path / "x.npy")]) == 2  # fmt: skip
    assert "--slice-thickness: must be in [0.05, 1000]" in capsys.readouterr().err
    assert main(["simulate", "image", str(ok), "--out", str(tmp_path / "x.png")]) == 2


def test_cli_overwrite_inputs_and_parameters(tmp_path, capsys):
    """simulate structure/image refuse existing outputs without --overwrite, never
    write over an input, and name the bad parameter; TIFF outputs carry the pixel size."""
    from ase import Atoms

    from napari_interfaces.cli import main
    from napari_interfaces.io.micrograph import read_micrograph

    scene = tmp_path / "scene.xyz"
    args = ["simulate", "structure", "--extent", "20", "20", "--substrate-thickness", "0",
            "--diameter", "8", "--seed", "1", "--out", str(scene)]  # fmt: skip
    assert main(args) == 0
    before = scene.read_bytes()
    assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert scene.read_bytes() == before
    assert main(args + ["--overwrite"]) == 0
    for bad, name in (
        (["--particles", "0"], "--particles"),
        (["--diameter", "-3"], "--diameter"),
        (["--extent", "0", "10"], "--extent"),
        (["--orientation", "1 x 0"], "--orientation"),
    ):
        assert main(args + ["--overwrite"] + bad) == 2
        assert capsys.readouterr().err.startswith(f"napari-interfaces: error: {name}")
    assert not list(tmp_path.glob(".*tmp*"))

    ok = tmp_path / "ok.xyz"
    Atoms("Au", positions=[[5, 5, 1]], cell=[10, 10, 2]).write(ok)
    before = ok.read_bytes()
    assert main(["simulate", "image", str(ok), "--device", "numpy", "--out", str(ok)]) == 2
    assert "one of the inputs" in capsys.readouterr().err and ok.read_bytes() == before
    img = tmp_path / "img.tif"
    base = ["simulate", "image", str(ok), "--device", "numpy", "--out", str(img)]
    assert main(base + ["--pixel-size", "0.2"]) == 0
    capsys.readouterr()
    mic = read_micrograph(img)
    assert mic.pixel_size == pytest.approx(0.2) and mic.data.shape == (50, 50)
    assert main(base) == 2
    assert "--out" in capsys.readouterr().err
    for bad, name in (
        (["--sampling", "0"], "--sampling"),
        (["--energy-kv", "-200"], "--energy-kv"),
        (["--dose", "-1"], "--dose"),
        (["--pixel-size", "1e-5"], "--pixel-size"),
        (["--frozen-phonons", "0"], "--frozen-phonons"),
        (["--median", "-1"], "--median"),
        (["--aberration", "C99=1"], "--aberration"),
        (["--labels", str(img)], "--labels"),
    ):
        assert main(base + ["--overwrite"] + bad) == 2, bad
        assert capsys.readouterr().err.startswith(f"napari-interfaces: error: {name}"), bad


def test_cli_image_refuses_a_grid_beyond_the_memory_limit(tmp_path, capsys, monkeypatch):
    from ase import Atoms

    from napari_interfaces.cli import main

    ok = tmp_path / "ok.xyz"
    Atoms("Au", positions=[[5, 5, 1]], cell=[10, 10, 2]).write(ok)
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_BYTES", str(1 << 20))
    rc = main(["simulate", "image", str(ok), "--device", "numpy", "--sampling", "0.01",
               "--out", str(tmp_path / "x.tif")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "multislice on a 1000 x 1000 grid" in err and "NAPARI_INTERFACES_MAX_BYTES" in err
    assert not (tmp_path / "x.tif").exists()


def test_simulate_sample_result_and_shared_defaults():
    """simulate_sample returns one result object; structure defaults are build_scene's."""
    import inspect

    from napari_interfaces.simulate.structures import build_scene
    from napari_interfaces.simulate.workflow import (
        SimulatedSample,
        sample_parameters,
        simulate_sample,
    )

    s = simulate_sample(0, extent=(16, 16), substrate_thickness=0, particle_diameter=8,
                        sampling=0.2, defocus=50, dose=500, device="numpy")  # fmt: skip
    assert isinstance(s, SimulatedSample)
    assert s.image.shape == s.labels.shape == s.instances.shape == (80, 80)
    assert s.grid.spacing == pytest.approx((0.2, 0.2)) and s.grid.unit == "Å"
    assert s.sampling == pytest.approx((0.2, 0.2))
    sig = inspect.signature(build_scene).parameters
    assert s.params["min_gap"] == sig["min_gap"].default
    assert s.params["n_particles"] == sig["n_particles"].default
    assert "position" in sample_parameters()["structure"]
    with pytest.raises(ValueError, match="radius"):
        simulate_sample(0, radius=3)
