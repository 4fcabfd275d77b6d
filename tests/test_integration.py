"""Pipelines hand data to each other through files without losing geometry."""

from __future__ import annotations

import numpy as np
import pytest


def test_simulated_tiff_carries_pixel_size_to_micrograph_reader(tmp_path):
    ase = pytest.importorskip("ase")
    from ase.io import write

    from napari_interfaces import cli
    from napari_interfaces.io.micrograph import read_micrograph

    atoms = ase.Atoms(
        "Au4", positions=[(8, 8, 5), (12, 8, 5), (8, 12, 5), (12, 12, 5)], cell=(20, 20, 10)
    )
    atoms.pbc = (True, True, False)
    # a particle_id array, as "simulate structure" writes
    atoms.new_array("particle_id", np.ones(len(atoms), dtype=int))
    write(tmp_path / "tiny.xyz", atoms, format="extxyz")
    rc = cli.main(
        [
            "simulate", "image", str(tmp_path / "tiny.xyz"), "--energy-kv", "200",
            "--sampling", "0.1", "--slice-thickness", "2", "--device", "numpy",
            "--label-method", "atoms",
            "--out", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif"),
        ]
    )  # fmt: skip
    assert rc == 0
    img = read_micrograph(tmp_path / "img.tif")
    lab = read_micrograph(tmp_path / "lab.tif")
    assert img.pixel_size == pytest.approx(0.1, rel=1e-3)  # Å, from the ImageJ metadata
    assert lab.pixel_size == pytest.approx(0.1, rel=1e-3)
    data = np.asarray(img.data, dtype=float)
    assert data.shape == (200, 200)
    # a weak-phase object near focus: mean intensity ~1, contrast at the Au columns
    assert data.mean() == pytest.approx(1.0, abs=0.05)
    assert data.std() > 0.005
    # 4 single Au atoms are too weak for exit-wave labels: projected-atom labels
    assert set(np.unique(np.asarray(lab.data)).tolist()) == {0, 1}


def test_apt_files_keep_geometry_from_synth_to_segment_to_reload(tmp_path, capsys):
    """apt synth -> apt voxelize / apt segment -> the docks' workflows: one grid throughout."""
    from napari_interfaces.apt.workflows import explore, profiles, reload_labels, segment_dataset
    from napari_interfaces.cli import main
    from napari_interfaces.io.apt_volume import read_volume_tiff

    syn, vox, seg = tmp_path / "syn", tmp_path / "vox", tmp_path / "seg"
    argv = ["apt", "synth", "--size", "10", "10", "14", "--seed", "5", "--out", str(syn)]
    assert main(argv) == 0
    pos = syn / "synthetic_layered_seed5.pos"
    argv = ["apt", "voxelize", str(pos), "--voxel", "1", "--elements", "Cr", "--out", str(vox)]
    assert main(argv) == 0
    argv = ["apt", "segment", str(pos), "--method", "iso", "--scheduler", "inline"]
    assert main([*argv, "--out", str(seg)]) == 0
    capsys.readouterr()

    ex = explore(pos, voxel_size=1.0, spectrum=False)  # the APT explorer's workflow
    cr = read_volume_tiff(vox / "synthetic_layered_seed5_Cr_at_pct.tif")
    assert cr.grid == ex.grid
    np.testing.assert_allclose(cr.data, ex.composition("Cr"))

    run = segment_dataset(pos, method="iso")  # the Interfaces dock's workflow
    saved = reload_labels(seg / "synthetic_layered_seed5" / "phases.tif", pos)
    assert saved.grid == run.grid == ex.grid
    np.testing.assert_array_equal(saved.labels, run.labels)
    assert run.message == "1 interface(s) between 2 phases"
    # the proxigram of the reloaded labels is the one the batch wrote
    ref = run.proxigram.phase
    prof = profiles(saved.labels, saved.grid, saved.atoms, saved.volume, reference=ref).profile
    csv = np.loadtxt(
        seg / "synthetic_layered_seed5" / "proxigram.csv", delimiter=",", skiprows=1, ndmin=2
    )
    rows = {round(float(d), 6): float(n) for d, n in zip(prof.distance_nm, prof.total)}
    assert len(csv) >= 10
    for d, n in zip(csv[:, 0], csv[:, -1]):  # the CSV keeps the bins with atoms
        assert rows[round(float(d), 6)] == n
