"""Benchmark: read + range + voxelize APT point clouds, and APAV side by side.

Usage::

    python benchmarks/bench_apt_io.py                      # 1e6, 1e7, 1e8 ions
    python benchmarks/bench_apt_io.py --sizes 1e6 1e7      # smaller
    python benchmarks/bench_apt_io.py --apav-python /path/to/venv/bin/python

Synthetic clouds: a seeded layered Ni-Al-Cr specimen (``apt.synthetic``,
20 x 20 x 40 nm, ~0.76 M ions) stacked along z until the size is reached,
written as ``.pos`` + ``.rrng`` under ``benchmarks/_work`` (git-ignored).
Each size runs in a fresh subprocess that reports wall times per stage and
peak memory: ``ru_maxrss`` (resident set, which also counts the pages of the
memory-mapped ``.pos`` file the OS can drop at any time) and the peak of
numpy/Python heap allocations (``tracemalloc``), which is what the
pipeline itself holds.

Stages: **read** (memory-map + NaN/inf scan), **range** (species of every ion
and the decomposed composition, ``composition_of_cloud``), **voxelize**
(bounds pass + one pass binning every ion by voxel and species, 1 nm
voxels). End to end = read + range + voxelize.

APAV (``pip install apav`` in a separate virtual environment; its PyQt5
must not enter the project's environment) runs on the real ``Si.pos`` from
``../shared/data/apt`` with ``RangedGrid`` (1 nm bins, delocalization
3 x 3 x 1.5 nm), next to our ``voxelize`` with the same settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
SHARED = Path(os.environ.get("NAPARI_INTERFACES_SHARED_DATA", HERE.parents[1] / "shared" / "data"))


# ----------------------------------------------------------------------------- data
def make_cloud(n: int, work: Path) -> tuple[Path, Path]:
    """Write a synthetic ``.pos`` of ``n`` ions (stacked copies) and its ``.rrng``."""
    import numpy as np

    from napari_interfaces.apt.synthetic import synthesize
    from napari_interfaces.io.ranges import write_rrng

    work.mkdir(parents=True, exist_ok=True)
    pos, rrng = work / f"synth_{n}.pos", work / f"synth_{n}.rrng"
    if pos.exists() and pos.stat().st_size == 16 * n and rrng.exists():
        return pos, rrng
    s = synthesize("layered", size_nm=(20, 20, 40), seed=0)
    base = np.empty((s.cloud.n_ions, 4), dtype=">f4")
    base[:, :3] = s.cloud.xyz
    base[:, 3] = s.cloud.mass
    written = 0
    with open(pos, "wb") as fh:
        k = 0
        while written < n:
            block = base[: n - written].copy()
            block[:, 2] += np.float32(40.0 * k)
            fh.write(block.tobytes())
            written += len(block)
            k += 1
    write_rrng(rrng, s.ranges)
    return pos, rrng


# ----------------------------------------------------------------------------- child
def child(pos: str, rrng: str, deloc: bool) -> dict:
    import resource
    import tracemalloc

    tracemalloc.start()
    from napari_interfaces.apt._numba import kernels
    from napari_interfaces.apt.ranging import composition_of_cloud
    from napari_interfaces.apt.voxelize import voxelize
    from napari_interfaces.io.apt_pointcloud import read_pos
    from napari_interfaces.io.ranges import read_ranges

    kernel = kernels() is not None
    if kernel:  # compile outside the timing (cached on disk after the first run)
        import numpy as np

        from napari_interfaces.apt.pointcloud import PointCloud
        from napari_interfaces.apt.ranging import Range, RangeTable

        tiny = PointCloud(np.zeros((2, 3), "f4"), np.ones(2, "f4"))
        rt = RangeTable([Range(0.5, 1.5, "H", {"H": 1})])
        voxelize(tiny, rt)
        composition_of_cloud(tiny, rt)
    import scipy.ndimage  # noqa: F401 - import outside the timing (delocalization)

    tracemalloc.reset_peak()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    cloud = read_pos(pos)
    ranges = read_ranges(rrng)
    t1 = time.perf_counter()
    comp = composition_of_cloud(cloud, ranges)
    t2 = time.perf_counter()
    vox = voxelize(
        cloud, ranges, voxel_size=1.0, delocalization=(1.5, 3.0, 3.0) if deloc else None
    )
    t3 = time.perf_counter()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    _, peak = tracemalloc.get_traced_memory()
    return {
        "ions": cloud.n_ions,
        "read_s": t1 - t0,
        "range_s": t2 - t1,
        "voxelize_s": t3 - t2,
        "total_s": t3 - t0,
        "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "grid": list(vox.shape),
        "peak_alloc_mb": peak / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "numba": kernel,
        "composition": comp.atomic_percent,
        "element_totals": {e: float(vox.element_counts(e).sum(dtype="f8")) for e in vox.elements},
    }


APAV_CODE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import apav
from apav.analysis import RangedGrid
t1 = time.perf_counter()
roi = apav.load_pos(sys.argv[1])
rng = apav.load_rrng(sys.argv[2])
t2 = time.perf_counter()
grid = RangedGrid(roi, rng, bin_width=1, delocalization=[3, 3, 1.5])
t3 = time.perf_counter()
ec = getattr(grid, "_elem_counts", {})
tot = {getattr(k, "symbol", str(k)): float(v.sum()) for k, v in ec.items()} \
    if isinstance(ec, dict) else {}
print(json.dumps({"version": apav.__version__, "ions": int(roi.counts), "read_s": t2 - t1,
                  "voxelize_s": t3 - t2, "total_s": t3 - t1,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "element_totals": tot}))
"""


def run_child(args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["1e6", "1e7", "1e8"])
    ap.add_argument(
        "--apav-python",
        default=os.environ.get("APAV_PYTHON"),
        help="python of a venv with apav installed",
    )
    ap.add_argument("--numpy-too", action="store_true", help="also time the numpy fallback")
    ap.add_argument("--child", nargs=3, metavar=("POS", "RRNG", "DELOC"), help=argparse.SUPPRESS)
    ap.add_argument("--work", default=str(WORK))
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], a.child[1], a.child[2] == "1")))
        return 0

    import numpy as np

    print(
        f"# APT read + range + voxelize ({time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"numpy {np.__version__}, load average at start {os.getloadavg()[0]:.1f})\n"
    )
    rows = []
    for s in a.sizes:
        n = int(float(s))
        pos, rrng = make_cloud(n, Path(a.work))
        variants = [("numba", {})]
        if a.numpy_too and n <= 10_000_000:
            variants.append(("numpy", {"NAPARI_INTERFACES_NO_NUMBA": "1"}))
        for label, env in variants:
            r = run_child([str(pos), str(rrng), "0"], env)
            rows.append((label, r))
            print(f"<!-- {n} {label}: {json.dumps(r)} -->", flush=True)
    print(
        "| ions | kernel | read s | range s | voxelize s | end to end s | M ions/s "
        "| CPU s | M ions per CPU s | read + voxelize s (2 passes) | M ions/s "
        "| peak alloc MB | max RSS MB | grid (z, y, x) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, r in rows:
        print(
            f"| {r['ions']:,} | {label} | {r['read_s']:.2f} | {r['range_s']:.2f} | "
            f"{r['voxelize_s']:.2f} | {r['total_s']:.2f} | {r['ions'] / r['total_s'] / 1e6:.1f} | "
            f"{r['cpu_s']:.2f} | {r['ions'] / max(r['cpu_s'], 1e-9) / 1e6:.1f} | "
            f"{r['read_s'] + r['voxelize_s']:.2f} | "
            f"{r['ions'] / (r['read_s'] + r['voxelize_s']) / 1e6:.1f} | "
            f"{r['peak_alloc_mb']:.0f} | {r['max_rss_mb']:.0f} | {tuple(r['grid'])} |"
        )

    si, si_r = SHARED / "apt" / "Si.pos", SHARED / "apt" / "Si.RRNG"
    if not si.exists():
        print("\nReal dataset not found; APAV comparison skipped.")
        return 0
    ours = run_child([str(si), str(si_r), "1"])
    print("\n## Real Si.pos (945,211 ions), 1 nm voxels, delocalization 3 x 3 x 1.5 nm\n")
    print("| tool | read s | voxelize s | total s | max RSS MB | Cr atoms | O atoms | Si atoms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    et = ours["element_totals"]
    print(
        f"| napari-interfaces | {ours['read_s']:.3f} | {ours['voxelize_s']:.3f} | "
        f"{ours['read_s'] + ours['voxelize_s']:.3f} | {ours['max_rss_mb']:.0f} | "
        f"{et['Cr']:.0f} | {et['O']:.0f} | {et['Si']:.0f} |"
    )
    if not a.apav_python:
        print("\nAPAV: not run (pass --apav-python PATH of a venv with `pip install apav`).")
        return 0
    out = subprocess.run(
        [a.apav_python, "-c", APAV_CODE, str(si), str(si_r)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        print(f"\nAPAV failed: {out.stderr.strip().splitlines()[-1]}")
        return 0
    ap_r = json.loads(out.stdout.strip().splitlines()[-1])
    et = ap_r["element_totals"]
    print(
        f"| APAV {ap_r['version']} | {ap_r['read_s']:.3f} | {ap_r['voxelize_s']:.3f} | "
        f"{ap_r['total_s']:.3f} | {ap_r['max_rss_mb']:.0f} | {et.get('Cr', float('nan')):.0f} "
        f"| {et.get('O', float('nan')):.0f} | {et.get('Si', float('nan')):.0f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
