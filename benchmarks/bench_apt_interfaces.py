"""Accuracy and speed of the APT interface methods (HED fine-tuned, HED pretrained, iso, GMM).

Accuracy: synthetic layered / isolated / interconnected specimens from
``apt.synthetic.synthesize`` (default parameters, 20 x 20 x 40 nm, 1 nm
10-90 % interface width, 0.3 nm lateral noise, 3 % background), seeds 101+
(held out: fine-tuning used ``tests/_apt_interfaces_synth.py`` specimens with seeds
1000+). Metrics from ``apt.metrics``: edge F (1-voxel tolerance), phase IoU
(Hungarian), interface position error (nm), proxigram RMSE vs the true
profile within +-3 nm (bins with >= 100 atoms).

Real data: ``../shared/data/apt/Si.pos`` + ``Si.RRNG`` (Cr oxide on Si):
interface position and proxigram (PNG in docs/images).

Speed: time per dataset (real; a ~1e7-ion synthetic one with --big) and the
batch command's throughput with 1 and 2 dask workers.

    python benchmarks/bench_apt_interfaces.py [--seeds 101 102] [--big] [--out /tmp/bench_apt]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAPARI_INTERFACES_SHARED_DATA", REPO.parent / "shared" / "data"))
IMAGES = REPO / "docs" / "images"

METHODS = [
    ("HED fine-tuned", "hed", "finetuned"),
    ("HED pretrained (BSDS500)", "hed", "bsds500"),
    ("iso-concentration", "iso", None),
    ("GMM", "gmm", None),
]


def accuracy(seeds, geometries, out_rows):
    from napari_interfaces.apt.interfaces import (
        atoms_from_cloud,
        find_interfaces,
        volume_from_atoms,
    )
    from napari_interfaces.apt.metrics import evaluate_synthetic
    from napari_interfaces.apt.synthetic import synthesize

    example = None
    for geo in geometries:
        for seed in seeds:
            s = synthesize(geo, seed=seed)
            atoms = atoms_from_cloud(s.cloud, s.ranges)
            vol = volume_from_atoms(atoms, 1.0)
            for label, method, weights in METHODS:
                t0 = time.perf_counter()
                kw = {"weights": weights} if weights else {}
                res = find_interfaces(vol, method, **kw)
                dt = time.perf_counter() - t0
                ev = evaluate_synthetic(s, res, atoms)
                prox = ev.pop("proxigram", None)
                row = {
                    "geometry": geo,
                    "seed": seed,
                    "method": label,
                    "seconds": round(dt, 1),
                    "n_ions": int(s.cloud.n_ions),
                    **ev,
                }
                out_rows.append(row)
                print(json.dumps(row), flush=True)
                if (
                    geo == "isolated"
                    and label == "HED fine-tuned"
                    and example is None
                    and prox is not None
                ):
                    example = (prox, s)
    return example


def table(rows):
    lines = [
        "| geometry | method | phase IoU | edge F | position error (nm) | proxigram RMSE (at.%) | phases found | s / dataset |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for geo in dict.fromkeys(r["geometry"] for r in rows):
        for label, _, _ in METHODS:
            rs = [r for r in rows if r["geometry"] == geo and r["method"] == label]
            if not rs:
                continue

            def m(k, rs=rs):
                v = np.array([r[k] for r in rs], float)
                return f"{np.nanmean(v):.3f}" + (
                    f" (min {np.nanmin(v):.3f})" if k == "iou" else ""
                )

            def mx(k, rs=rs):
                v = np.array([r[k] for r in rs], float)
                return f"{np.nanmean(v):.2f} (max {np.nanmax(v):.2f})"

            ph = ",".join(str(r["n_phases"]) for r in rs)
            lines.append(
                f"| {geo} | {label} | {m('iou')} | {m('edge_f')} | {mx('position_nm')} | "
                f"{mx('rmse_at%')} | {ph} | {np.mean([r['seconds'] for r in rs]):.1f} |"
            )
    return "\n".join(lines)


def real_dataset(out: Path):
    from napari_interfaces.apt.interfaces import (
        atoms_from_cloud,
        find_interfaces,
        volume_from_atoms,
    )
    from napari_interfaces.apt.metrics import interface_faces
    from napari_interfaces.apt.proxigram import proxigram
    from napari_interfaces.io.apt_pointcloud import read_pointcloud
    from napari_interfaces.io.ranges import read_ranges

    pos = SHARED / "apt" / "Si.pos"
    if not pos.is_file():
        print(f"real dataset not found at {pos}")
        return None
    t0 = time.perf_counter()
    cloud = read_pointcloud(pos)
    atoms = atoms_from_cloud(cloud, read_ranges(SHARED / "apt" / "Si.RRNG"))
    vol = volume_from_atoms(atoms, 1.0)
    t_load = time.perf_counter() - t0
    results = {}
    for label, method, weights in METHODS:
        t0 = time.perf_counter()
        res = find_interfaces(vol, method, **({"weights": weights} if weights else {}))
        dt = time.perf_counter() - t0
        faces = interface_faces(res.labels, res.grid)
        info = {
            "seconds": round(dt, 1),
            "message": res.message,
            "phases": [(p["label"], p["n_atoms"], p["composition"]) for p in res.phases],
        }
        if res.found:
            z = faces[:, 2]
            info["interface_z_nm"] = [
                round(float(np.median(z)), 2),
                round(float(np.percentile(z, 10)), 2),
                round(float(np.percentile(z, 90)), 2),
            ]
            oxide = max(res.phases, key=lambda p: p["composition"].get("Cr", 0))["label"]
            prox = proxigram(
                res.labels, res.grid, atoms, phase=oxide, bin_nm=0.25, range_nm=(-6, 6)
            )
            ci = prox.elements.index("Cr")
            pct = prox.at_pct[:, ci]
            ok = prox.total > 100
            lo, hi = np.nanmin(pct[ok]), np.nanmax(pct[ok])
            half = lo + 0.5 * (hi - lo)
            d = prox.distance_nm[ok]
            cross = (
                float(np.interp(half, pct[ok], d))
                if np.all(np.diff(pct[ok]) > -5)
                else float(d[np.nanargmin(np.abs(pct[ok] - half))])
            )
            p = pct[ok]
            i10 = d[np.argmin(np.abs(p - (lo + 0.1 * (hi - lo))))]
            i90 = d[np.argmin(np.abs(p - (lo + 0.9 * (hi - lo))))]
            info["cr_50pct_crossing_nm"] = round(cross, 2)
            info["cr_10_90_width_nm"] = round(float(i90 - i10), 2)
            if label == "HED fine-tuned":
                prox.to_csv(out / "real_proxigram.csv")
                import matplotlib

                matplotlib.use("Agg")
                import matplotlib.pyplot as plt

                fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
                prox.plot(
                    ax,
                    elements=["Si", "Cr", "O"],
                    title="Si.pos (Cr oxide on Si): proxigram, HED fine-tuned",
                )
                ax.set_xlabel("distance to interface (nm), + inside the Cr oxide")
                fig.tight_layout()
                fig.savefig(IMAGES / "apt_interfaces_real_proxigram.png")
                plt.close(fig)
        results[label] = info
        print(label, json.dumps(info), flush=True)
    return {
        "n_ions": int(cloud.n_ions),
        "n_atoms": int(atoms.n),
        "grid_shape": list(vol.shape),
        "load_voxelize_s": round(t_load, 1),
        "methods": results,
    }


def synthetic_plot(example):
    if example is None:
        return
    prox, s = example
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    prox.plot(ax, title="synthetic isolated γ' (HED fine-tuned); dashed: truth")
    d = np.linspace(prox.distance_nm[0], prox.distance_nm[-1], 200)
    tp = s.true_profile(d)
    for e in prox.elements:
        ax.plot(d, tp[e], "k--", lw=0.8)
    ax.set_xlabel("distance to interface (nm), + inside γ'")
    fig.tight_layout()
    fig.savefig(IMAGES / "apt_interfaces_synthetic_proxigram.png")
    plt.close(fig)


def big_dataset():
    from napari_interfaces.apt.interfaces import (
        atoms_from_cloud,
        find_interfaces,
        volume_from_atoms,
    )
    from napari_interfaces.apt.synthetic import synthesize

    t0 = time.perf_counter()
    s = synthesize("isolated", size_nm=(50.0, 50.0, 100.0), seed=150)
    t_syn = time.perf_counter() - t0
    t0 = time.perf_counter()
    atoms = atoms_from_cloud(s.cloud, s.ranges)
    vol = volume_from_atoms(atoms, 1.0)
    t_vox = time.perf_counter() - t0
    out = {
        "n_ions": int(s.cloud.n_ions),
        "grid": list(vol.shape),
        "synthesize_s": round(t_syn, 1),
        "atoms_voxelize_s": round(t_vox, 1),
    }
    for label, method, weights in METHODS:
        if label == "HED pretrained (BSDS500)":
            continue
        t0 = time.perf_counter()
        res = find_interfaces(vol, method, **({"weights": weights} if weights else {}))
        out[label] = {"seconds": round(time.perf_counter() - t0, 1), "message": res.message}
        print(label, out[label], flush=True)
    return out


def batch_throughput(out: Path, n_files: int = 4):
    from napari_interfaces.apt.batch import run_batch
    from napari_interfaces.apt.synthetic import synthesize

    src = out / "batch_in"
    src.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n_files):
        s = synthesize("layered", seed=200 + i)
        f = s.write(src, stem=f"lay{i}")
        files.append(str(f["pos"]))
    res = {}
    for workers in (1, 2):
        dst = out / f"batch_out_{workers}"
        shutil.rmtree(dst, ignore_errors=True)
        t0 = time.perf_counter()
        run_batch(files, dst, method="hed", workers=workers, threads=1)
        dt = time.perf_counter() - t0
        res[workers] = {"seconds": round(dt, 1), "files_per_min": round(60 * n_files / dt, 2)}
        print("batch", workers, res[workers], flush=True)
    return {"n_files": n_files, "ions_per_file": None, "workers": res}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102])
    ap.add_argument("--geometries", nargs="+", default=["layered", "isolated", "interconnected"])
    ap.add_argument("--big", action="store_true", help="also time a ~1e7-ion synthetic dataset")
    ap.add_argument("--no-batch", action="store_true")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--out", default="/tmp/bench_apt_interfaces")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    IMAGES.mkdir(parents=True, exist_ok=True)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    rows: list[dict] = []
    example = accuracy(args.seeds, args.geometries, rows)
    report["accuracy"] = rows
    synthetic_plot(example)
    print(table(rows), flush=True)
    if not args.no_real:
        report["real"] = real_dataset(out)
    if not args.no_batch:
        report["batch"] = batch_throughput(out)
    if args.big:
        report["big"] = big_dataset()
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
