"""``napari-interfaces apt info | synth | voxelize``."""

from __future__ import annotations

import json
from pathlib import Path

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
        "known_unranged",
        "format",
        "range_file",
        "warnings",
    }
    assert info["format"] == "pos" and info["warnings"] == [] and info["known_unranged"] == {}
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


# ---------------------------------------------------------------------- issue 11: safe outputs
def _small_dataset(folder, stem="small", seed=21):
    from napari_interfaces.apt.synthetic import synthesize

    s = synthesize("layered", size_nm=(8.0, 8.0, 12.0), seed=seed)
    return s.write(folder, stem=stem)


def _segment(args, out, *extra):
    return main(
        ["apt", "segment", *map(str, args), "--out", str(out), "--method", "iso"]
        + ["--scheduler", "inline", "--json", *extra]
    )


def test_segment_same_named_inputs_get_own_folders_and_no_stale_files(tmp_path, capsys):
    a = _small_dataset(tmp_path / "d1", seed=21)["pos"]
    b = _small_dataset(tmp_path / "d2", seed=22)["pos"]
    out = tmp_path / "o"
    assert _segment([a, b], out) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert [s["out_dir"] for s in summaries] == [str(out / "d1_small"), str(out / "d2_small")]
    assert sorted(p.name for p in out.iterdir()) == ["d1_small", "d2_small"]
    for s, src in zip(summaries, (a, b)):
        data = json.loads((out / Path(s["out_dir"]).name / "summary.json").read_text())
        assert data["input"] == str(src)
    # an existing result folder is refused without --overwrite, before any work
    (out / "d1_small" / "stale.txt").write_text("old")
    assert _segment([a, b], out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "d1_small" / "stale.txt").is_file()
    # with --overwrite the folder is replaced in one step: no stale file survives,
    # and temporary folders of a killed run are removed
    from napari_interfaces.core.outputs import TMP_MARK, _host

    # (a run of this host whose process is gone: pid above Linux's pid_max)
    (out / f".d1_small.{TMP_MARK}-aptsegment-{_host()}-4194305-deadbeef").mkdir()
    assert _segment([a, b], out, "--overwrite") == 0
    capsys.readouterr()
    assert not (out / "d1_small" / "stale.txt").exists()
    assert (out / "d1_small" / "phases.tif").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_segment_never_replaces_a_folder_holding_its_input(tmp_path, capsys):
    pos = _small_dataset(tmp_path / "small")["pos"]  # tmp/small/small.pos
    assert _segment([pos], tmp_path, "--overwrite") == 2
    assert "input" in capsys.readouterr().err
    assert pos.is_file()


def test_voxelize_and_synth_refuse_existing_outputs(tmp_path, capsys):
    files = _small_dataset(tmp_path / "in")
    out = tmp_path / "v"
    cmd = ["apt", "voxelize", str(files["pos"]), "--elements", "Cr", "--out", str(out)]
    assert main(cmd) == 0
    tif = out / "small_Cr_at_pct.tif"
    before = tif.read_bytes()
    assert main(cmd) == 2
    assert "--overwrite" in capsys.readouterr().err and tif.read_bytes() == before
    assert main([*cmd, "--overwrite"]) == 0
    syn = ["apt", "synth", "--size", "6", "6", "6", "--seed", "3", "--out", str(tmp_path / "s")]
    assert main(syn) == 0
    assert main(syn) == 2
    assert main([*syn, "--overwrite"]) == 0
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert len(names) == 5 and not [n for n in names if n.startswith(".")]


@pytest.mark.parametrize(
    "command, name",
    [
        (["voxelize", "{pos}", "--voxel", "0"], "--voxel"),
        (["voxelize", "{pos}", "--voxel", "-1"], "--voxel"),
        (["voxelize", "{pos}", "--voxel", "nan"], "--voxel"),
        (["voxelize", "{pos}", "--delocalization", "-3", "1", "1"], "--delocalization"),
        (["voxelize", "{pos}", "--elements", "Xx"], "--elements"),
        (["synth", "--width", "-3"], "--width"),
        (["synth", "--size", "0", "5", "5"], "--size"),
        (["synth", "--efficiency", "0"], "--efficiency"),
        (["synth", "--background", "1"], "--background"),
        (["synth", "--voxel", "0"], "--voxel"),
        (["segment", "{pos}", "--voxel", "0"], "--voxel"),
        (["segment", "{pos}", "--axis", "q"], "--axis"),
        (["segment", "{pos}", "--bin", "-1"], "--bin"),
        (["segment", "{pos}", "--workers", "0"], "--workers"),
        (["segment", "{pos}", "--voxel", "200"], "--voxel: must be in [0.05, 100], got 200"),
        (["segment", "{pos}", "--method", "iso", "--weights", "x.pt"], "--weights"),
        (["voxelize", "{pos}", "--delocalization", "3", "3"], "--delocalization: expected 3"),
        (["synth", "--size", "5", "5"], "--size: expected 3"),
        (["synth", "--size", "5", "5", "5", "--period", "30"], "--period: must be in [1, 20]"),
    ],
)
def test_bad_parameters_fail_before_writing(tmp_path, capsys, command, name):
    files = _small_dataset(tmp_path / "in")
    out = tmp_path / "out"
    args = [c.format(pos=files["pos"]) for c in command]
    assert main(["apt", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {name}" in err, err
    assert not out.exists()


def test_voxel_grid_over_the_memory_limit_is_refused_first(tmp_path, capsys, monkeypatch):
    files = _small_dataset(tmp_path / "in")
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_BYTES", "1000000")
    out = tmp_path / "out"
    assert main(["apt", "voxelize", str(files["pos"]), "--voxel", "0.1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "voxel grid" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["apt", "synth", "--size", "1000", "1000", "1000", "--out", str(out)]) == 2
    assert "synthetic specimen" in capsys.readouterr().err


def test_range_file_matching_no_ion_warns(tmp_path, capsys):
    from napari_interfaces.apt.dataset import RangingWarning, open_dataset

    files = _small_dataset(tmp_path / "in")
    far = tmp_path / "far.rrng"
    far.write_text("[Ions]\nNumber=1\nIon1=Fe\n[Ranges]\nNumber=1\nRange1=900.0 901.0 Fe:1\n")
    with pytest.warns(RangingWarning, match=r"^0 of [\d,]+ ions ranged by far.rrng"):
        ds = open_dataset(files["pos"], far)
    assert ds.ranged_fraction == 0.0 and ds.provenance["warnings"]
    assert main(["apt", "info", str(files["pos"]), "--ranges", str(far)]) == 0
    assert "warning: 0 of" in capsys.readouterr().err
    assert main(["apt", "info", str(files["pos"]), "--ranges", str(far), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"][0].startswith("0 of")


def test_bad_weights_file_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    files = _small_dataset(tmp_path / "in")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    rc = main(
        ["apt", "segment", str(files["pos"]), "--out", str(tmp_path / "o"), "--method", "hed"]
        + ["--weights", str(bad)]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--weights {bad}" in err
    assert (
        main(
            [
                "apt",
                "segment",
                str(files["pos"]),
                "--out",
                str(tmp_path / "o"),
                "--method",
                "hed",
                "--weights",
                str(tmp_path / "missing.pt"),
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_refused_scheduler_fails_fast_and_help_warns(tmp_path, capsys):
    import socket

    files = _small_dataset(tmp_path / "in")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(
        [
            "apt",
            "segment",
            str(files["pos"]),
            "--out",
            str(tmp_path / "o"),
            "--method",
            "iso",
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
        ]
    )
    assert rc == 2
    assert "--scheduler" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):
        main(["apt", "segment", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "OWN file systems" in text and "run code" in text


def test_voxelize_may_write_beside_its_input(tmp_path, capsys):
    files = _small_dataset(tmp_path / "in")
    folder = files["pos"].parent
    assert main(["apt", "voxelize", str(files["pos"]), "--out", str(folder)]) == 0
    assert (folder / "small_Cr_at_pct.tif").is_file()
    assert files["pos"].is_file() and files["rrng"].is_file()
    capsys.readouterr()
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["apt", "voxelize", str(files["pos"]), "--out", str(not_a_folder)]) == 2
    assert "is a file" in capsys.readouterr().err


# ---------------------------------------------------------------- one spec per workflow
@pytest.mark.parametrize(
    "command, expected",
    [
        ("voxelize", ["--voxel nm", "nm; [0.05, 100]; default: 1.0", "default: off"]),
        ("segment", ["--axis", "(nm; [0.05, 100]; default: 1.0)", "(nm; (0, 10]; default: 0.25)"]),
        ("synth", ["--noise-lateral nm", "nm; (0, 2000]", "default: auto"]),
        ("info", ["--ranges", "--json", "FILE"]),
    ],
)
def test_help_lists_the_generated_options(capsys, command, expected):
    with pytest.raises(SystemExit):
        main(["apt", command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for e in expected:
        assert e in text, e


def test_workflows_take_a_spec_or_keywords(tmp_path):
    from napari_interfaces.apt.workflows import (
        ExploreParams,
        SegmentParams,
        explore,
        segment_dataset,
    )
    from napari_interfaces.core.errors import ParameterError

    files = _small_dataset(tmp_path)
    spec = ExploreParams(voxel_size=2.0, delocalization_xyz=(1, 1, 0.5), elements=("Cr",))
    a = explore(files["pos"], params=spec, spectrum=False)
    b = explore(
        files["pos"],
        voxel_size=2.0,
        delocalization_xyz=(1, 1, 0.5),
        elements=["Cr"],
        spectrum=False,
    )
    assert a.vox.delocalization_nm == (0.5, 1.0, 1.0) and a.elements == ["Cr"]
    np.testing.assert_array_equal(a.composition("Cr"), b.composition("Cr"))
    r1 = segment_dataset(files["pos"], params=SegmentParams(method="iso", axes="Z"))
    r2 = segment_dataset(files["pos"], method="iso", axes="z")
    np.testing.assert_array_equal(r1.labels, r2.labels)
    assert r1.parameters == r2.parameters and r1.parameters["axes"] == "z"
    with pytest.raises(ParameterError) as err:  # the engine names the field, not the flag
        explore(files["pos"], voxel_size=0)
    assert err.value.name == "voxel_size" and "--" not in str(err.value)
    with pytest.raises(TypeError):
        segment_dataset(files["pos"], params=spec)
