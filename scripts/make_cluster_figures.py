"""Regenerate docs/images/cluster_*.png (demo map, NASA and PNNL maps).

Usage::

    python scripts/make_cluster_figures.py

The real-image maps need ``../shared/data/micrographs``; they are the same
figures ``benchmarks/bench_cluster.py`` writes (its ``real`` section).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    from napari_interfaces.cluster.demo import run_demo

    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        run_demo(d)
        shutil.copy(Path(d) / "cluster.png", images / "cluster_demo.png")
    import bench_cluster

    bench_cluster.real_images(figures=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
