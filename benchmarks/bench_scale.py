"""Pixel-size estimate of images without one (issue 23 item 2): fringes alone vs fringes + particle size.

    python benchmarks/bench_scale.py [--sim STORE] [--n 48] [--threads 1] [--no-real]

* simulated: the ``hrtem_default`` held-out images (``--sim``, default
  ``benchmarks/_work/scale/test.zarr``: seed 2002, made here when missing,
  48 samples, NumPy multislice, ``transmission`` band limit as the shipped
  model's databases) resampled by Fourier cropping from 0.2 Å/px to 0.3,
  0.45 and 0.8 Å/px (where fringes are at the edge of resolution); for each, :func:`segment_image` without a pixel size with
  ``pixel_size_cue="fringes"`` (the old estimate: the lowest strong fringe
  read as {111}) and ``"size"`` (fringes + particle size, the new default): fraction within
  15 % and 25 % of the true pixel size, the misses' ratios, the reported probability
  (how sure) vs how often it is right, and the pooled pixel F1;
* real: the 20 frames of ``../shared/data/hrtem_real`` (validation only,
  no pixel size known): the estimates' spread (the frames come from one
  in-situ series, so one magnification; a spread is error) and the pooled
  pixel F1 with each estimate (scoring of ``bench_segment_real.py``).

The settings of the size cue (:data:`~napari_interfaces.segment.scale.FCC_FAMILIES`
priors, :data:`~napari_interfaces.segment.scale.DEFAULT_DIAMETER_RANGE`) were
chosen on another simulated set (seed 3003), never on these. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))
STORE = REPO / "benchmarks" / "_work" / "scale" / "test.zarr"
PIXEL_SIZES = (0.2, 0.3, 0.45, 0.8)
CUES = ("fringes", "size")


def make_store(path: Path, n: int, seed: int = 2002) -> None:
    from napari_interfaces.simulate.database import generate_database
    from napari_interfaces.simulate.multislice import BANDLIMIT_ENV

    os.environ.setdefault(BANDLIMIT_ENV, "transmission")
    generate_database("hrtem_default", path, n=n, seed=seed, scheduler="inline", device="numpy")


def fourier_resample(a: np.ndarray, n: int) -> np.ndarray:
    """Square image ``a`` band-limited and resampled to ``n × n`` (a coarser detector)."""
    if n == a.shape[0]:
        return a
    f = np.fft.fftshift(np.fft.fft2(a))
    c, h = a.shape[0] // 2, n // 2
    g = f[c - h : c - h + n, c - h : c - h + n]
    return (np.real(np.fft.ifft2(np.fft.ifftshift(g))) * (n * n) / a.size).astype(np.float32)


def _f1(tp, fp, fn):
    return 2 * tp / max(1, 2 * tp + fp + fn)


def simulated(model, store: Path, n: int):
    from scipy import ndimage

    from napari_interfaces.segment.inference import segment_image
    from napari_interfaces.simulate.database import completed_indices, read_sample

    idx = completed_indices(store)[:n]
    rows = {}
    for ps in PIXEL_SIZES:
        for cue in CUES:
            rows[(ps, cue)] = {"ratio": [], "prob": [], "conf": [], "tp": 0, "fp": 0, "fn": 0}
    t = {cue: 0.0 for cue in CUES}
    for i in idx:
        a, lab, _ = read_sample(store, int(i))
        a = np.asarray(a, np.float64)
        lab = np.asarray(lab) > 0
        for ps in PIXEL_SIZES:
            m = int(round(a.shape[0] * 0.2 / ps))
            img = fourier_resample(a, m)
            truth = ndimage.zoom(lab.astype(np.float32), m / a.shape[0], order=1) >= 0.5
            true_ps = 0.2 * a.shape[0] / m
            for cue in CUES:
                t0 = time.perf_counter()
                r = segment_image(img, model, tile=512, particles=False, pixel_size_cue=cue)
                t[cue] += time.perf_counter() - t0
                row = rows[(ps, cue)]
                est = r.pixel_size if r.pixel_size_source == "estimated" else np.nan
                row["ratio"].append(est / true_ps)
                row["prob"].append(getattr(r.estimate, "probability", None))
                pred = r.labels > 0
                row["tp"] += int((pred & truth).sum())
                row["fp"] += int((pred & ~truth).sum())
                row["fn"] += int((~pred & truth).sum())
        print(f"  sample {i} done", file=sys.stderr, flush=True)
    return rows, t, len(idx)


def real(model):
    from bench_segment_real import load_real, score_frames

    from napari_interfaces.segment.inference import segment_image

    frames = load_real()
    out = {}
    for cue in CUES:
        preds, used, probs, diam = [], [], [], []
        t0 = time.perf_counter()
        for _, img, _ in frames:
            r = segment_image(img, model, tile=512, particles=False, pixel_size_cue=cue)
            preds.append(r.labels > 0)
            used.append(r.pixel_size if r.pixel_size_source == "estimated" else np.nan)
            probs.append(getattr(r.estimate, "probability", None))
            d = getattr(r.estimate, "particle_diameter_px", None)
            diam.append(np.nan if d is None else d * r.pixel_size)
        s = score_frames(preds, frames)
        out[cue] = dict(used=np.array(used), probs=probs, diam=np.array(diam), f1=s["f1"], area=s["area_ratio"],
                        s=time.perf_counter() - t0)  # fmt: skip
    return out


def main(argv=None) -> int:
    import torch

    from napari_interfaces.segment.models import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, default=STORE)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-real", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.sim.exists():
        make_store(args.sim, args.n)
    model = load_model("default")
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{start}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {args.threads}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    rows, t, n = simulated(model, args.sim, args.n)
    print(f"\nsimulated ({n} held-out images; load {os.getloadavg()[0]:.1f}):\n")
    print("| true Å/px | cue | within 15 % | within 25 % | misses (ratio est/true) "
          "| mean p | p ≥ 0.7: n, right | pooled pixel F1 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for (ps, cue), r in rows.items():
        ratio = np.array(r["ratio"])
        ok = np.abs(np.log(ratio)) < np.log(1.15)
        miss = ", ".join(f"×{x:.2f}" for x in sorted(ratio[~ok & np.isfinite(ratio)]))
        nf = int((~np.isfinite(ratio)).sum())
        miss += f" (+{nf} none)" if nf else ""
        pr = np.array([np.nan if p is None else p for p in r["prob"]], float)
        sure = pr >= 0.7
        sure_s = f"{int(sure.sum())}, {int((sure & ok).sum())}" if np.isfinite(pr).any() else "–"
        mean_p = f"{np.nanmean(pr):.2f}" if np.isfinite(pr).any() else "–"
        ok25 = int((np.abs(np.log(ratio)) < np.log(1.25)).sum())
        print(f"| {ps} | {cue} | {int(ok.sum())}/{len(ok)} | {ok25}/{len(ok)} | {miss} | {mean_p} | {sure_s} "
              f"| {_f1(r['tp'], r['fp'], r['fn']):.3f} |")  # fmt: skip
    print(f"\nseconds (all {n}×{len(PIXEL_SIZES)} images): "
          + ", ".join(f"{c}: {v:.1f}" for c, v in t.items()))  # fmt: skip
    if not args.no_real:
        from bench_segment_real import REAL

        if not (REAL / "image").is_dir():
            print("real frames not found: skipped")
            return 0
        out = real(model)
        print(f"\nreal frames (20, no pixel size; load {os.getloadavg()[0]:.1f}):\n")
        print("| cue | estimated | Å/px min-median-max | max/min | sd of log | pooled pixel F1 "
              "| area ratio | p min-median | particles Å (median) | s |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        for cue, o in out.items():
            u = o["used"]
            pr = [p for p in o["probs"] if p is not None]
            ps_ = f"{min(pr):.2f}-{np.median(pr):.2f}" if pr else "–"
            dm = f"{np.nanmedian(o['diam']):.0f}" if np.isfinite(o["diam"]).any() else "–"
            print(f"| {cue} | {int(np.isfinite(u).sum())}/{len(u)} "
                  f"| {np.nanmin(u):.3f}-{np.nanmedian(u):.3f}-{np.nanmax(u):.3f} "
                  f"| {np.nanmax(u) / np.nanmin(u):.2f} | {np.nanstd(np.log(u)):.3f} "
                  f"| {o['f1']:.3f} | {o['area']:.2f} | {ps_} | {dm} | {o['s']:.0f} |")  # fmt: skip
        print("\nper frame (fringes → particle size): " + ", ".join(
            f"{a:.3f}→{b:.3f}" for a, b in zip(out["fringes"]["used"], out["size"]["used"],
                                               strict=True)))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
