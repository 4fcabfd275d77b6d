"""Range files from other labs (issue 25.1) and hostile range tables (issue 22 items 8, 9, 12).

Each fixture in ``tests/data/range_quirks`` is hand-written and named after the quirk it
covers. Every quirk parses with one warning that names the lines and the right ion list.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_interfaces.apt.ranging import (
    Range,
    RangeFileWarning,
    RangeOverlapWarning,
    RangeTable,
    composition,
    species_counts,
)
from napari_interfaces.io.apt_errors import AptFormatError
from napari_interfaces.io.ranges import read_ranges, read_rrng

QUIRKS = Path(__file__).parent / "data" / "range_quirks"


def _read_one_warning(name: str):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        rt = read_ranges(QUIRKS / name)
    ours = [w for w in rec if issubclass(w.category, RangeFileWarning)]
    assert len(ours) == 1, [str(w.message) for w in rec]
    msg = str(ours[0].message)
    assert name in msg and "\n" not in msg
    return rt, msg


def test_apsuite_unknown_peak_is_unranged_but_known():
    rt, msg = _read_one_warning("apsuite_unknown_peak_no_counts.rrng")
    assert rt.species == ["Fe", "Cr", "unknown60"]
    assert rt.known_unranged == ["unknown60"] and rt.elements == ["Fe", "Cr"]
    assert "line 11" in msg and "unranged-but-known" in msg
    m = np.array([28.0, 26.0, 59.9, 59.9, 70.0], np.float32)
    comp = composition(species_counts(rt.species_of(m), len(rt.species)), rt)
    assert comp.known_unranged == {"unknown60": 2}
    assert comp.ranged == 2 and comp.unranged == 1 and comp.n_ions == 5
    assert comp.atomic_percent == {"Fe": 50.0, "Cr": 50.0}  # unknown60 adds no atoms


def test_env_placeholders_x23_hyd():
    rt, msg = _read_one_warning("env_placeholders_X23_Hyd.env")
    assert rt.species == ["Fe", "Cr", "X23", "Hyd"]
    assert rt.known_unranged == ["X23", "Hyd"]
    assert "lines 23, 24" in msg and "X23" in msg


def test_rng_unknown_species_column():
    rt, msg = _read_one_warning("rng_unknown_species_column.rng")
    assert rt.species == ["Fe", "Cr", "unknown"] and rt.known_unranged == ["unknown"]
    assert rt.ranges[3].composition == {} and "line 12" in msg


def test_rng_all_catchall_yields_to_element_ranges():
    rt, msg = _read_one_warning("rng_All_catchall_0_to_400.rng")
    assert rt.species == ["All", "Fe", "Cr"] and rt.known_unranged == ["All"]
    assert "overlap" in msg and "yields" in msg
    m = np.array([28.0, 26.0, 56.0, 13.0, 399.0, 401.0], np.float32)
    names = [rt.species[i] if i >= 0 else "-" for i in rt.species_of(m)]
    assert names == ["Fe", "Cr", "Fe", "All", "All", "-"]


def test_rrng_junk_line_before_first_section():
    rt, msg = _read_one_warning("rrng_junk_line_before_ions.rrng")
    assert rt.species == ["Fe", "Cr"] and "line 1: text before the first section" in msg


def test_rrng_shared_interval_first_line_kept():
    rt, msg = _read_one_warning("rrng_shared_interval_two_compositions.rrng")
    assert rt.species == ["Fe", "N", "Cr"] and len(rt) == 3
    assert "line 10" in msg and "same mass interval" in msg and "line 9" in msg
    assert rt.species[rt.species_of(np.array([14.0], np.float32))[0]] == "N"


@pytest.mark.parametrize(
    "name", ["rrng_malformed_short_lines.rrng", "rng_malformed_short_lines.rng"]
)
def test_malformed_short_lines_skipped_with_line_numbers(name):
    rt, msg = _read_one_warning(name)
    assert rt.species == ["Fe", "Cr"] and "malformed range lines skipped" in msg
    lines = "lines 8, 10, 11" if name.endswith(".rrng") else "lines 8, 10"
    assert lines in msg


def test_name_reused_with_two_compositions_counted_by_composition():
    rt, msg = _read_one_warning("rrng_name_reused_two_compositions.rrng")
    assert rt.species == ["Cr", "CrO"] and len(rt) == 3
    assert rt.species_composition["CrO"] == {"Cr": 1, "O": 1}
    assert "reuse an ion name" in msg and "#2" in msg


def test_known_unranged_round_trips_through_rrng(tmp_path):
    from napari_interfaces.io.ranges import write_rrng

    rt = RangeTable([Range(26.0, 27.0, "Cr", {"Cr": 1}), Range(59.85, 60.06, "unknown60", {})])
    with pytest.warns(RangeFileWarning, match="unknown60"):
        back = read_rrng(write_rrng(tmp_path / "k.rrng", rt))
    assert back.species == ["Cr", "unknown60"] and back.known_unranged == ["unknown60"]


def test_apt_info_lists_unranged_but_known(tmp_path):
    from napari_interfaces.apt.pointcloud import PointCloud
    from napari_interfaces.apt.workflows import dataset_info
    from napari_interfaces.io.apt_pointcloud import write_pos

    xyz = np.zeros((4, 3), np.float32)
    c = PointCloud(xyz, np.array([28.0, 26.0, 59.9, 59.9], np.float32))
    p = write_pos(tmp_path / "a.pos", c)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # kept for the one-line CLI print, not re-warned
        info = dataset_info(p, QUIRKS / "apsuite_unknown_peak_no_counts.rrng")
    assert info["known_unranged"] == {"unknown60": 2}
    assert len(info["warnings"]) == 1 and "unknown60" in info["warnings"][0]
    assert info["composition_at_pct"] == {"Fe": 50.0, "Cr": 50.0}


# ----------------------------------------------------------------------------- issue 22
def test_3000_mutually_overlapping_ranges_one_short_warning(tmp_path):
    lines = ["[Ions]", "Number=1", "Ion1=Fe", "[Ranges]", "Number=3000"]
    lines += [f"Range{i + 1}={10 + i * 0.001:.3f} {100 + i * 0.001:.3f} Fe:1" for i in range(3000)]
    p = tmp_path / "overlap.rrng"
    p.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        rt = read_rrng(p)
    assert len(rec) == 1 and issubclass(rec[0].category, RangeOverlapWarning)
    assert "4498500 pair(s)" in str(rec[0].message) and len(str(rec[0].message)) < 3000
    assert rt.count_overlaps() == 3000 * 2999 // 2
    assert rt.species_of(np.array([50.0], np.float32)).tolist() == [0]


def test_20k_disjoint_ranges(tmp_path):
    els = ["Fe", "Cr", "Ni", "Al"]
    lines = ["[Ranges]", "Number=20000"]
    lines += [
        f"Range{i + 1}={1 + i * 0.01:.3f} {1.005 + i * 0.01:.4f} {els[i % 4]}:1 O:{1 + i // 4}"
        for i in range(20000)
    ]
    p = tmp_path / "many.rrng"
    p.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overlaps, nothing to say
        rt = read_rrng(p)
    assert len(rt) == 20000 and rt.count_overlaps() == 0 and len(rt.species) == 20000
    m = np.array([1.002, 1.007, 1 + 19999 * 0.01 + 0.002], np.float32)
    assert rt.species_of(m).tolist() == [0, -1, 19999]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_refused_without_hanging(tmp_path):
    f = tmp_path / "pipe.rrng"
    os.mkfifo(f)
    with pytest.raises(AptFormatError, match="not a regular file .a FIFO."):
        read_ranges(f)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_symlink_to_dev_zero_refused(tmp_path):
    link = tmp_path / "zero.rng"
    link.symlink_to("/dev/zero")
    with pytest.raises(AptFormatError, match="not a regular file .a device"):
        read_ranges(link)


def test_oversized_range_file_refused(tmp_path, monkeypatch):
    from napari_interfaces.io import ranges as mod

    monkeypatch.setattr(mod, "MAX_RANGE_FILE_BYTES", 100)
    p = tmp_path / "big.rrng"
    p.write_text("[Ranges]\n" + "Range1=10 11 Al:1\n" * 20)
    with pytest.raises(AptFormatError, match="larger than a range file"):
        read_rrng(p)


def test_open_dataset_warns_once_as_a_ranging_warning(tmp_path):
    from napari_interfaces.apt.dataset import RangingWarning, open_dataset
    from napari_interfaces.apt.pointcloud import PointCloud
    from napari_interfaces.io.apt_pointcloud import write_pos

    c = PointCloud(np.zeros((3, 3), np.float32), np.array([28.0, 26.0, 59.9], np.float32))
    p = write_pos(tmp_path / "a.pos", c)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = open_dataset(p, QUIRKS / "apsuite_unknown_peak_no_counts.rrng")
    assert [w.category for w in rec] == [RangingWarning]
    assert ds.composition.known_unranged == {"unknown60": 1}


def test_too_many_species_is_a_one_line_error(tmp_path):
    lines = ["[Ranges]", "Number=33000"]
    lines += [
        f"Range{i + 1}={1 + i * 0.01:.3f} {1.005 + i * 0.01:.4f} O:{i + 1}" for i in range(33000)
    ]
    p = tmp_path / "many_species.rrng"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(AptFormatError, match="33,000 distinct ion species"):
        read_rrng(p)
