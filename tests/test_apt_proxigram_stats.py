"""Honest proxigram statistics (issue 25.4): Wilson intervals and low-count bins."""

from __future__ import annotations

import numpy as np
import pytest

from napari_interfaces.apt.proxigram import MIN_BIN_ATOMS, Proxigram, wilson_interval


def test_wilson_interval_matches_the_formula_and_is_never_zero_width():
    lo, hi = wilson_interval(np.array([2, 0, 50, 0]), np.array([2, 10, 100, 0]))
    # 2 of 2: centre (1 + 1/4) / 1.5, half width sqrt(0 + 1/16) / 1.5
    assert lo[0] == pytest.approx((1.25 - 0.25) / 1.5) and hi[0] == 1.0
    assert lo[1] == 0.0 and hi[1] == pytest.approx(0.0909, abs=1e-4)
    # large N: close to the binomial +- 1 SE (0.5 +- 0.05)
    assert lo[2] == pytest.approx(0.451, abs=2e-3) and hi[2] == pytest.approx(0.549, abs=2e-3)
    assert np.isnan(lo[3]) and np.isnan(hi[3])


def _prox():
    counts = np.array([[40, 60], [3, 1], [2, 0], [0, 0]])  # Cr, Fe per bin
    return Proxigram(np.array([-1.0, 0.0, 1.0, 2.0]), counts, ["Cr", "Fe"], 1, 1.0)


def test_low_count_bins_flagged_in_csv(tmp_path):
    p = _prox()
    assert p.low_count.tolist() == [False, True, True, False]
    assert MIN_BIN_ATOMS == 10
    lines = p.to_csv(tmp_path / "p.csv").read_text().splitlines()
    head = lines[0].split(",")
    assert head[:5] == [
        "distance_nm",
        "Cr_at%",
        "Cr_err_at%",
        "Cr_wilson_lo_at%",
        "Cr_wilson_hi_at%",
    ]
    assert head[-2:] == ["low_count", "n_atoms"]
    rows = [dict(zip(head, ln.split(","))) for ln in lines[1:]]
    assert len(rows) == 3  # the empty bin is not written
    deep = rows[2]  # 2 of 2 atoms Cr: 100 at.%, binomial error 0, Wilson 67-100 at.%
    assert float(deep["Cr_at%"]) == 100.0 and float(deep["Cr_err_at%"]) == 0.0
    assert float(deep["Cr_wilson_lo_at%"]) == pytest.approx(66.6667, abs=1e-3)
    assert deep["low_count"] == "1" and rows[0]["low_count"] == "0"


def test_plot_says_which_bins_are_low_count():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    _prox().plot(ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(f"< {MIN_BIN_ATOMS} atoms/bin (2 bins)" in t for t in labels)
    plt.close(fig)
