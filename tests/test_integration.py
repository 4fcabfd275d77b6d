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
