"""Workflow specs: one declaration gives validation, CLI options, help and docs tables."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from napari_interfaces._cli._spec import add_spec, spec_from_args
from napari_interfaces.core.errors import ParameterError
from napari_interfaces.core.spec import Spec, markdown_table, param


@dataclass(frozen=True)
class Demo(Spec):
    image: Path | None = param(None, "input image", positional=True, nargs="?", gui=False)
    chip: int | None = param(None, "chip side", unit="px", lo=8, hi=1024, none="auto", step=8)
    resolution: float = param(1.0, "Louvain resolution", lo=0, lo_open=True, hi=100)
    features: str = param("fft", "chip features", choices=("fft", "filterbank"))
    sigmas: tuple[float, ...] = param((1.0, 2.0), "feature scales", unit="px", lo=0, lo_open=True)
    clahe: bool = param(False, "equalize first", advanced=True)
    refine: bool = param(True, "refine boundaries", advanced=True)

    def check(self) -> None:
        if self.features == "filterbank" and self.chip is not None and self.chip < 16:
            raise ParameterError("chip", "filterbank needs chips of 16 px or more")


def test_defaults_and_conversion():
    d = Demo()
    assert (d.chip, d.resolution, d.sigmas, d.refine) == (None, 1.0, (1.0, 2.0), True)
    d = Demo(chip="64", resolution="0.5", sigmas="1, 4,16", image="a.tif")
    assert d.chip == 64 and isinstance(d.chip, int)
    assert d.resolution == 0.5 and d.sigmas == (1.0, 4.0, 16.0)
    assert d.image == Path("a.tif")
    assert Demo(chip="auto").chip is None
    assert Demo(sigmas=3).sigmas == (3.0,)


@pytest.mark.parametrize(
    ("kw", "name", "text"),
    [
        ({"chip": 4}, "chip", "[8, 1024]"),
        ({"chip": 2.5}, "chip", "integer"),
        ({"resolution": 0}, "resolution", "(0, 100]"),
        ({"resolution": float("nan")}, "resolution", "finite"),
        ({"features": "vgg"}, "features", "one of fft, filterbank"),
        ({"sigmas": "1,-2"}, "sigmas", "> 0"),
        ({"sigmas": ""}, "sigmas", "at least one"),
        ({"clahe": "yes"}, "clahe", "true or false"),
        ({"resolution": None}, "resolution", "required"),
        ({"features": "filterbank", "chip": 8}, "chip", "16 px"),
    ],
)
def test_bad_values_name_the_field(kw, name, text):
    with pytest.raises(ParameterError) as err:
        Demo(**kw)
    assert err.value.name == name
    assert text in err.value.reason
    assert "\n" not in str(err.value)


def test_round_trip_and_replace():
    d = Demo(chip=32, sigmas=(2, 8), image="x.png")
    js = json.loads(json.dumps(d.to_dict()))
    assert Demo.from_dict(js) == d
    with pytest.raises(ParameterError, match="not a parameter"):
        Demo.from_dict({"chips": 3})
    assert d.replace(chip=None).chip is None
    with pytest.raises(ParameterError):
        d.replace(chip=0)


def test_cli_options_are_generated_and_errors_spell_the_flag(capsys):
    from napari_interfaces.cli import _as_flag

    parser = argparse.ArgumentParser(prog="x")
    add_spec(parser, Demo)
    text = parser.format_help()
    assert "--chip" in text and "px; [8, 1024]; default: auto" in text
    assert "advanced options" in text and "--no-refine" in text
    args = parser.parse_args(["img.tif", "--chip", "auto", "--sigmas", "1,2,4", "--clahe"])
    spec = spec_from_args(Demo, args)
    assert spec == Demo(image="img.tif", sigmas=(1, 2, 4), clahe=True)
    args = parser.parse_args(["--resolution", "-1"])
    with pytest.raises(ParameterError) as err:
        spec_from_args(Demo, args)
    assert _as_flag(err.value, args) == "--resolution: must be in (0, 100], got -1"


def test_markdown_table():
    table = markdown_table(Demo)
    assert "| `--chip` | auto | px | [8, 1024] | chip side |" in table
    assert "| `IMAGE` |" in table
    assert "(advanced)" in table


def test_mutable_defaults_are_refused():
    with pytest.raises(TypeError):
        param([1, 2], "a list")
    with pytest.raises(ValueError):
        param(1, "")


def test_parameter_docs_are_current():
    """docs/parameters.md is generated from the specs; regenerate it after changing one."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    script = root / "scripts" / "gen_parameter_docs.py"
    if not script.exists():
        pytest.skip("scripts/ not shipped (installed package)")
    run = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_of_is_the_engine_entry():
    d = Demo(chip=32)
    assert Demo.of(d) is d
    assert Demo.of(d, chip=64).chip == 64
    assert Demo.of(chip=16) == Demo(chip=16)
    with pytest.raises(ParameterError):
        Demo.of(chip=1)
    with pytest.raises(TypeError):
        Demo.of(object())


def test_repeated_list_options_add_up():
    @dataclass(frozen=True)
    class L(Spec):
        defects: tuple[str, ...] = param((), "defects", item=str, nargs="+", alias="defect")

    parser = argparse.ArgumentParser(prog="x")
    add_spec(parser, L)
    assert spec_from_args(L, parser.parse_args([])).defects == ()
    args = parser.parse_args(["--defect", "twin", "--defect", "stacking_fault", "vacancy"])
    assert spec_from_args(L, args).defects == ("twin", "stacking_fault", "vacancy")


def test_gui_labels_carry_the_unit_once():
    @dataclass(frozen=True)
    class U(Spec):
        energy_kv: float = param(200.0, "voltage", unit="kV")
        pixel_size: float = param(1.0, "pixel", unit="Å")
        cs: float = param(0.0, "C30", unit="Å", label="Cs")

    labels = {p.name: p.gui_label for p in U.params()}
    assert labels == {"energy_kv": "energy (kV)", "pixel_size": "pixel size (Å)", "cs": "Cs (Å)"}


def test_required_names_the_first_missing_path():
    """``Spec.required``: a path optional in the spec but needed by a command."""
    d = Demo(image="a.tif")
    assert d.required("image", what="an image") == Path("a.tif")
    with pytest.raises(ParameterError, match="required: give an image") as e:
        Demo().required("image", what="an image")
    assert e.value.name == "image"
    with pytest.raises(ParameterError, match="a value is required"):
        Demo().required("image")


def test_help_and_tooltip_share_unit_and_range():
    from napari_interfaces._widgets._form import tooltip

    p = Demo.param_of("chip")
    assert p.unit_and_range() == ["px", "[8, 1024]"]
    assert Demo.param_of("refine").unit_and_range() == []
    parser = argparse.ArgumentParser()
    add_spec(parser, Demo)
    assert "(px; [8, 1024]; default: auto)" in " ".join(parser.format_help().split())
    assert tooltip(p) == "chip side [px; [8, 1024]; empty/lowest = auto]"
