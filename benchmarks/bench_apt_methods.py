"""All APT phase methods x all synthetic geometries in one run, plus cluster analysis.

One table: for each geometry (``layered``, ``isolated``, ``interconnected``
from ``apt.synthetic.synthesize``; ``precipitates`` and ``boundary`` (α′
precipitates of radius 1-3 nm at 1e24 m^-3, free or on a Ni-segregated
grain boundary) from ``synthesize_particles``) and each method (``auto``,
HED fine-tuned, HED pretrained on BSDS500, iso-concentration, GMM):

* found: precipitates with at least half of their voxels in the predicted
  precipitate phase (radius >= 1.5 nm; all particles in brackets);
* phase IoU (Hungarian, mean over the two phases, as ``apt.metrics``) and the
  precipitate phase's own IoU;
* position error: mean |true signed distance| at the predicted interface (nm);
* composition error: mean over elements of |measured - true| (at.%) of the
  precipitate phase (true: the nominal precipitate composition);
* proxigram RMSE vs the true profile (±3 nm, bins >= 100 atoms);
* time of the method on the voxel volume (s).

Then cluster analysis (maximum separation, DBSCAN, HDBSCAN) on ``clusters``
specimens (Cu-Ni clusters of 10-50 solute atoms, 1e24 m^-3) and the end-to-end
time of the default (read .pos + ranges -> atoms -> voxels -> phases ->
proxigram) per million ions, synthetic and real (``../shared/data/apt/Si.pos``).

Seeds are held out from every choice made in ``apt.auto`` and ``apt.clusters``
(tuned on seeds 1-2, 5, 11-13 and 101).

    nice -n 10 python benchmarks/bench_apt_methods.py [--seeds 7] [--quick] [--out /tmp/bench_apt_methods]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAPARI_INTERFACES_SHARED_DATA", REPO.parent / "shared" / "data"))

METHODS = [
    ("auto", "auto", None),
    ("HED fine-tuned", "hed", "finetuned"),
    ("HED pretrained (BSDS500)", "hed", "bsds500"),
    ("iso-concentration", "iso", None),
    ("GMM", "gmm", None),
]
GEOMETRIES = ["layered", "isolated", "interconnected", "precipitates", "boundary"]


def segment(vol, method: str, weights: str | None):
    """Run one method (``auto`` directly until find_interfaces dispatches it)."""
    from napari_interfaces.apt.interfaces import METHODS as DISPATCHED
    from napari_interfaces.apt.interfaces import find_interfaces

    if method == "auto" and "auto" not in DISPATCHED:
        from napari_interfaces.apt.auto import auto_interfaces

        return auto_interfaces(vol)
    return find_interfaces(vol, method, **({"weights": weights} if weights else {}))


def specimen(geo: str, seed: int):
    from napari_interfaces.apt.synthetic import synthesize, synthesize_particles

    if geo in ("precipitates", "boundary"):
        return synthesize_particles(geo, seed=seed, number_density_m3=1e24, radius_nm=(1.0, 3.0))
    return synthesize(geo, seed=seed)


def composition_error(synth, res) -> float:
    from napari_interfaces.apt.metrics import phase_iou

    truth01, _ = synth.phase_volume(res.grid, res.labels.shape)
    true = np.where(res.labels > 0, truth01.astype(np.int32) + 1, 0)
    ppt = phase_iou(res.labels, true)["mapping"].get(2)
    if ppt is None or res.n_phases < 2:
        return float("nan")
    row = next(p for p in res.phases if p["label"] == ppt)
    return float(
        np.mean([abs(row["composition"][e] - 100 * synth.precipitate[e]) for e in synth.elements])
    )


def accuracy(seeds, geometries, rows):
    from napari_interfaces.apt.interfaces import atoms_from_cloud, volume_from_atoms
    from napari_interfaces.apt.metrics import evaluate_synthetic, particle_metrics

    for geo in geometries:
        for seed in seeds:
            s = specimen(geo, seed)
            atoms = atoms_from_cloud(s.cloud, s.ranges)
            vol = volume_from_atoms(atoms, 1.0)
            for label, method, weights in METHODS:
                t0 = time.perf_counter()
                res = segment(vol, method, weights)
                dt = time.perf_counter() - t0
                ev = evaluate_synthetic(s, res, atoms)
                ev.pop("proxigram", None)
                row = {
                    "geometry": geo,
                    "seed": seed,
                    "method": label,
                    "n_ions": int(s.cloud.n_ions),
                    "seconds": round(dt, 2),
                    "iou": ev["iou"],
                    "position_nm": ev["position_nm"],
                    "rmse_at%": ev["rmse_at%"],
                    "n_phases": res.n_phases,
                    "composition_err_at%": composition_error(s, res),
                }
                if geo not in ("layered", "interconnected"):
                    pm = particle_metrics(s, res)
                    row.update(
                        found=pm["found"],
                        n=pm["n"],
                        found_big=pm["found_big"],
                        n_big=pm["n_big"],
                        iou_precipitate=pm["iou_precipitate"],
                    )
                rows.append(row)
                print(json.dumps(row), flush=True)


def table(rows) -> str:
    lines = [
        "| geometry | method | found (r ≥ 1.5 nm; all) | phase IoU | precipitate IoU | position error (nm) | composition error (at.%) | proxigram RMSE (at.%) | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for geo in dict.fromkeys(r["geometry"] for r in rows):
        for label, _, _ in METHODS:
            rs = [r for r in rows if r["geometry"] == geo and r["method"] == label]
            if not rs:
                continue

            def mean(k, fmt="{:.3f}", rs=rs):
                v = np.array([r.get(k, np.nan) for r in rs], float)
                return fmt.format(np.nanmean(v)) if np.isfinite(v).any() else "–"

            if "found_big" in rs[0]:
                found = (
                    f"{sum(r['found_big'] for r in rs)}/{sum(r['n_big'] for r in rs)} "
                    f"({sum(r['found'] for r in rs)}/{sum(r['n'] for r in rs)})"
                )
            else:
                found = "–"
            lines.append(
                f"| {geo} | {label} | {found} | {mean('iou')} | {mean('iou_precipitate')} | "
                f"{mean('position_nm', '{:.2f}')} | {mean('composition_err_at%', '{:.1f}')} | "
                f"{mean('rmse_at%', '{:.2f}')} | {mean('seconds', '{:.1f}')} |"
            )
    return "\n".join(lines)


def clusters(seeds, rows):
    from napari_interfaces.apt.clusters import find_clusters
    from napari_interfaces.apt.metrics import match_clusters
    from napari_interfaces.apt.synthetic import synthesize_particles

    for seed in seeds:
        s = synthesize_particles("clusters", seed=seed, number_density_m3=1e24)
        sp = s.ranges.species_of(s.cloud.mass)
        truth = {p["id"]: p for p in s.params["particles"]}
        for method, order in (("maxsep", 1), ("dbscan", 1), ("hdbscan", 1)):
            t0 = time.perf_counter()
            res = find_clusters(
                s.cloud.xyz,
                sp,
                s.ranges,
                ["Cu", "Ni"],
                method=method,
                dmax=0.7,
                order=order,
                n_min=11,
            )
            dt = time.perf_counter() - t0
            m = match_clusters(res.labels, s.cloud.columns["true_cluster"])
            zn, zc = [], []
            for tid, c in m["found"].items():
                r, p = res.clusters[c - 1], truth[tid]
                zn.append((r["n_solute_atoms"] - p["n_solute"]) / np.sqrt(p["n_solute"]))
                cu = r["Cu_at%"] / max(r["Cu_at%"] + r["Ni_at%"], 1e-9)
                ct = p["composition"]["Cu"] / 100
                zc.append(
                    (cu - ct) / np.sqrt(max(ct * (1 - ct), 0.05) / max(r["n_solute_atoms"], 1))
                )
            big = [t for t, p in truth.items() if p["n_solute"] >= 15]
            row = {
                "seed": seed,
                "method": method,
                "n_ions": int(s.cloud.n_ions),
                "n_true": m["n_true"],
                "found": m["n_found"],
                "found_ge15": sum(t in m["found"] for t in big),
                "n_ge15": len(big),
                "spurious": len(m["spurious"]),
                "size_z_mean": float(np.mean(zn)) if zn else float("nan"),
                "size_z_absmax": float(np.max(np.abs(zn))) if zn else float("nan"),
                "comp_z_mean": float(np.mean(zc)) if zc else float("nan"),
                "density_m3": res.summary["number_density_m3"],
                "true_density_m3": s.params["number_density_m3"],
                "clustered": res.summary["random_check"]["clustered"],
                "suggested_dmax": res.summary["suggested"]["dmax_nm"],
                "suggested_nmin": res.summary["suggested"]["n_min"],
                "seconds": round(dt, 2),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    # the same alloy without clusters: the randomized-label check must say so
    s = synthesize_particles("clusters", seed=seeds[0], n_particles=0)
    sp = s.ranges.species_of(s.cloud.mass)
    res = find_clusters(s.cloud.xyz, sp, s.ranges, ["Cu", "Ni"], dmax=0.7, order=1, n_min=11)
    rows.append(
        {
            "seed": seeds[0],
            "method": "maxsep (no clusters in the data)",
            "found": res.n_clusters,
            "clustered": res.summary["random_check"]["clustered"],
            "ks_pvalue": res.summary["random_check"]["ks_pvalue"],
        }
    )
    print(json.dumps(rows[-1]), flush=True)


def cluster_table(rows) -> str:
    lines = [
        "| method | clusters found / true (≥ 15 solute atoms) | spurious | size error (mean z; max abs z) | Cu/(Cu+Ni) error (mean z) | number density found / true (m⁻³) | randomized check | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "n_true" not in r:
            lines.append(
                f"| {r['method']} | {r['found']} clusters | – | – | – | – | "
                f"clustered = {r['clustered']} (KS p = {r['ks_pvalue']:.2f}) | – |"
            )
            continue
        lines.append(
            f"| {r['method']} (seed {r['seed']}) | {r['found']}/{r['n_true']} ({r['found_ge15']}/{r['n_ge15']}) | "
            f"{r['spurious']} | {r['size_z_mean']:+.2f}; {r['size_z_absmax']:.1f} | {r['comp_z_mean']:+.2f} | "
            f"{r['density_m3']:.2e} / {r['true_density_m3']:.2e} | clustered = {r['clustered']}, "
            f"suggests dmax {r['suggested_dmax']} nm, Nmin {r['suggested_nmin']} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def end_to_end(seed: int) -> dict:
    """read -> atoms -> voxels -> auto -> proxigram, synthetic precipitates and Si.pos."""
    from napari_interfaces.apt.auto import auto_interfaces
    from napari_interfaces.apt.dataset import open_dataset
    from napari_interfaces.apt.interfaces import atoms_from_cloud, volume_from_atoms
    from napari_interfaces.apt.proxigram import proxigram
    from napari_interfaces.io.apt_pointcloud import write_pos
    from napari_interfaces.io.ranges import write_rrng

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        s = specimen("precipitates", seed)
        pos = write_pos(Path(tmp) / "p.pos", s.cloud)
        rr = write_rrng(Path(tmp) / "p.rrng", s.ranges)
        files = {"synthetic precipitates": (pos, rr)}
        real = SHARED / "apt" / "Si.pos"
        if real.is_file():
            files["real Si.pos"] = (real, SHARED / "apt" / "Si.RRNG")
        for name, (p, r) in files.items():
            t = {}
            t0 = time.perf_counter()
            ds = open_dataset(p, r)
            t["read_range"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            atoms = atoms_from_cloud(ds.cloud, ds.ranges)
            vol = volume_from_atoms(atoms, 1.0)
            t["atoms_voxels"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = auto_interfaces(vol)
            t["phases"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            if res.found:
                proxigram(res.labels, res.grid, atoms)
            t["proxigram"] = time.perf_counter() - t0
            total = sum(t.values())
            n = ds.cloud.n_ions
            out[name] = {
                "n_ions": int(n),
                **{k: round(v, 2) for k, v in t.items()},
                "total_s": round(total, 2),
                "s_per_million_ions": round(total / (n / 1e6), 2),
                "message": res.message,
            }
            print(name, json.dumps(out[name]), flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[7])
    ap.add_argument("--geometries", nargs="+", default=GEOMETRIES)
    ap.add_argument("--quick", action="store_true", help="skip the HED pretrained rows")
    ap.add_argument("--out", default="/tmp/bench_apt_methods")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    if args.quick:
        METHODS[:] = [m for m in METHODS if m[2] != "bsds500"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_start": os.getloadavg(),
    }
    t_all = time.perf_counter()
    rows: list[dict] = []
    accuracy(args.seeds, args.geometries, rows)
    crow: list[dict] = []
    clusters(args.seeds, crow)
    report["end_to_end"] = end_to_end(args.seeds[0])
    report["accuracy"] = rows
    report["clusters"] = crow
    report["load_average_end"] = os.getloadavg()
    report["wall_s"] = round(time.perf_counter() - t_all, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print()
    print(table(rows))
    print()
    print(cluster_table(crow))
    print()
    print(json.dumps(report["end_to_end"], indent=1))
    print(
        f"wall {report['wall_s']} s, load {report['load_average_start']} -> {report['load_average_end']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
