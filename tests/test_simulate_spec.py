"""HRTEM simulation commands declare their parameters once (workflow specs) and compose once."""

from __future__ import annotations

import numpy as np
import pytest

from napari_interfaces.cli import build_parser, main
from napari_interfaces.core.errors import ParameterError
from napari_interfaces.simulate.workflow import (
    HRTEMParams,
    StructureParams,
    simulate_hrtem,
    simulate_sample,
)


def _help(*cmd: str) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([*cmd, "--help"])


def test_help_lists_generated_options_with_units_and_ranges(capsys):
    _help("simulate", "image")
    text = capsys.readouterr().out
    assert "--energy-kv kV" in text and "[10, 3000]" in text
    assert "--dose e/Å²" in text and "default: off" in text
    assert "advanced options" in text and "--aberration NAME=VALUE" in text
    _help("simulate", "structure")
    text = capsys.readouterr().out
    assert "--diameter" in text and "--particles" in text and "[1, 1000]" in text


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["structure", "--extent", "-1", "10"], "--extent: must be in (0, 10000]"),
        (["structure", "--defect", "kink"], "--defect: must be one of twin, stacking_fault"),
        (["structure", "--particles", "2", "--diameter", "5", "6", "7"], "--diameter:"),
        (["image", "s.xyz", "--mtf", "0", "0.5", "2"], "--mtf: Q0 must be > 0"),
        (["image", "s.xyz", "--sampling", "3"], "--sampling: must be in [0.005, 2], got 3"),
        (["image", "s.xyz", "--aberration", "C12"], "--aberration: expects NAME=VALUE"),
    ],
)
def test_bad_values_are_one_line_flag_errors(argv, flag, tmp_path, capsys):
    out = "o.xyz" if argv[0] == "structure" else "o.tif"
    assert main(["simulate", *argv, "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"napari-interfaces: error: {flag}") and len(err.splitlines()) == 1


def test_engine_names_fields_not_flags():
    with pytest.raises(ParameterError) as err:
        HRTEMParams(aberrations=("C99=1",))
    assert err.value.name == "aberrations"
    with pytest.raises(ParameterError) as err:
        StructureParams(n_particles=2, particle_diameter=(5, 6, 7))
    assert err.value.name == "particle_diameter"
    assert StructureParams(extent=30).scene_kwargs()["extent"] == (30.0, 30.0)
    assert StructureParams(orientation="1 1 0").scene_kwargs()["orientation"] == (1, 1, 0)


def test_one_composition_spec_keywords_and_sampler_agree():
    """simulate_hrtem with a spec or keywords, and the database sampler, give the same sample."""
    structure = StructureParams(extent=(20, 20), substrate_thickness=0, particle_diameter=12)
    kw = dict(sampling=0.2, defocus=50.0, dose=500.0, device="numpy")
    a = simulate_hrtem(structure, HRTEMParams(**kw), rng=3)
    b = simulate_hrtem(structure, rng=3, **kw)
    np.testing.assert_array_equal(a.image.data, b.image.data)
    np.testing.assert_array_equal(a.instances, b.instances)
    assert a.image.data.shape == a.instances.shape == (100, 100)
    assert a.mask.sum() > 0 and a.image.grid.spacing == pytest.approx((0.2, 0.2))
    # the sampler draws the structure, the phonon seed and the noise from one generator
    s = simulate_sample(3, extent=(20, 20), substrate_thickness=0, particle_diameter=12, **kw)
    rng = np.random.default_rng(3)
    from napari_interfaces.simulate.structures import build_scene

    scene = build_scene(extent=(20, 20), substrate_thickness=0, particle_diameter=12, rng=rng)
    c = simulate_hrtem(scene, phonon_seed=int(rng.integers(2**31)), rng=rng, **kw)
    np.testing.assert_array_equal(s.image, c.image.data)
    np.testing.assert_array_equal(s.labels, c.mask)


def test_database_options_and_engine_entry(tmp_path, capsys):
    from napari_interfaces.simulate.database import DatabaseParams, generate_database, read_sample

    _help("simulate", "database")
    text = capsys.readouterr().out
    assert "--n N" in text and "default: recipe" in text and "--threads-per-worker" in text
    out = tmp_path / "db.zarr"
    argv = ["simulate", "database", "tiny_synthetic", "--out", str(out), "--quiet"]
    assert main([*argv, "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "napari-interfaces: error: --workers: must be in [1, 4096], got 0"
    assert main([*argv, "--n", "0"]) == 2
    assert "--n: must be in [1, 1e+09], got 0" in capsys.readouterr().err
    assert not out.exists()
    # the engine takes the validated spec or its fields as keywords: the same store
    a = generate_database(
        "tiny_synthetic", tmp_path / "a.zarr", DatabaseParams(n=2, scheduler="inline")
    )
    b = generate_database("tiny_synthetic", tmp_path / "b.zarr", n=2, scheduler="inline")
    assert a.computed == b.computed == 2
    np.testing.assert_array_equal(read_sample(a.path, 1)[0], read_sample(b.path, 1)[0])
    with pytest.raises(ParameterError) as err:
        generate_database("tiny_synthetic", tmp_path / "c.zarr", n=2, threads_per_worker=0)
    assert err.value.name == "threads_per_worker"
