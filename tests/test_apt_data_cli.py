"""``napari-interfaces apt info | synth | voxelize``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_interfaces.cli import main


def test_apt_info_json_on_real_data(shared_data, capsys):
    d = shared_data / "apt"
    assert main(["apt", "info", str(d / "Si.pos"), "--ranges", str(d / "Si.RRNG"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {
        "ions",
        "bounds_nm",
        "mass_range_da",
        "composition_at_pct",
        "ranged_fraction",
        "format",
        "range_file",
        "warnings",
    }
    assert info["format"] == "pos" and info["warnings"] == []
    assert info["ions"] == 945_211
    assert info["bounds_nm"]["z"] == pytest.approx([-75.0807, -0.0200], abs=1e-4)
    assert info["composition_at_pct"]["Cr"] == pytest.approx(16.6319, abs=1e-4)
    assert info["ranged_fraction"] == pytest.approx(0.927846, abs=1e-6)


def test_apt_synth_then_info_and_voxelize(tmp_path, capsys):
    out = tmp_path / "syn"
    assert (
        main(
            [
                "apt",
                "synth",
                "--geometry",
                "interconnected",
                "--seed",
                "4",
                "--size",
                "8",
                "8",
                "8",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    pos = out / "synthetic_interconnected_seed4.pos"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            pos.name,
            "synthetic_interconnected_seed4.rrng",
            "synthetic_interconnected_seed4_phase.tif",
            "synthetic_interconnected_seed4_profile.csv",
            "synthetic_interconnected_seed4_truth.json",
        ]
    )
    capsys.readouterr()
    assert (
        main(["apt", "info", str(pos), "--ranges", str(pos.with_suffix(".rrng")), "--json"]) == 0
    )
    info = json.loads(capsys.readouterr().out)
    assert list(info["composition_at_pct"]) == ["Ni", "Al", "Cr"]
    assert info["ions"] == 25_020
    # voxelize picks up the range file with the same stem
    assert (
        main(
            [
                "apt",
                "voxelize",
                str(pos),
                "--voxel",
                "2",
                "--delocalization",
                "3",
                "3",
                "1.5",
                "--elements",
                "Al",
                "--counts",
                "--out",
                str(tmp_path / "v"),
            ]
        )
        == 0
    )
    from napari_interfaces.io.apt_volume import read_volume_tiff

    al = read_volume_tiff(tmp_path / "v" / "synthetic_interconnected_seed4_Al_at_pct.tif")
    assert al.grid.spacing == (2.0, 2.0, 2.0) and al.data.dtype == np.float32
    assert al.metadata["delocalization_nm_zyx"] == [1.5, 3.0, 3.0]
    counts = sum(
        read_volume_tiff(
            tmp_path / "v" / f"synthetic_interconnected_seed4_{el}_counts.tif"
        ).data.sum(dtype=np.float64)
        for el in ("Ni", "Al", "Cr")
    )
    assert counts == pytest.approx(info["ions"] * info["ranged_fraction"], rel=1e-5)


def test_apt_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.pos"
    bad.write_bytes(b"\x00" * 17)
    assert main(["apt", "info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at byte 16" in err
    assert main(["apt", "voxelize", str(bad), "--out", str(tmp_path)]) == 2
