"""Train the ``learned`` chip encoder self-supervised; writes the shipped weights.

Data (no labels used): synthetic lattice micrographs with controlled disorder
(:func:`napari_interfaces.cluster.synthetic.order_disorder_micrograph` with
random lattice periods, orientations and noise) plus, when the project's
HRTEM simulator runs, simulated HRTEM images of nanoparticles on amorphous
carbon (``napari_interfaces.simulate.workflow.simulate_sample``).

Objective: spatial contrastive learning (InfoNCE / NT-Xent). The two views of
a pair are two chips cut at nearby positions (offset up to a quarter chip) of
the same image, each with its own flips, 90-degree rotation, contrast jitter
and noise; the other chips of the batch are negatives.

Usage::

    python scripts/train_learned_encoder.py --steps 600 --threads 2

Writes ``src/napari_interfaces/weights/cluster_learned_encoder.pt`` and a
``.json`` beside it (architecture, input size, training settings, sha256).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "napari_interfaces" / "weights" / "cluster_learned_encoder.pt"


def make_images(n_synth: int, n_hrtem: int, size: int, seed: int) -> list[np.ndarray]:
    from napari_interfaces.cluster.synthetic import order_disorder_micrograph, texture_mosaic

    rng = np.random.default_rng(seed)
    imgs = []
    for i in range(n_synth):
        period = float(rng.uniform(3.5, 12.0))
        noise = float(rng.uniform(0.1, 0.5))
        img, _ = order_disorder_micrograph(
            (size, size), n_regions=8, period=period, noise=noise, seed=seed + i
        )
        imgs.append(img)
    for i in range(max(1, n_synth // 4)):
        img, _ = texture_mosaic((size, size), n_regions=10, n_classes=5, seed=seed + 100 + i)
        imgs.append(img)
    if n_hrtem:
        try:
            from napari_interfaces.simulate.workflow import simulate_sample

            for i in range(n_hrtem):
                s = simulate_sample(
                    np.random.default_rng(seed + 1000 + i),
                    extent=(51.2, 51.2),
                    substrate_thickness=30.0,
                    n_particles=1,
                    particle_diameter=float(rng.uniform(20, 40)),
                    defocus=float(rng.uniform(-100, 100)),
                    dose=float(rng.uniform(200, 2000)),
                    device="numpy",
                )
                x = s.image.astype(np.float32)
                imgs.append((x - x.min()) / (np.ptp(x) + 1e-9))
            print(f"added {n_hrtem} simulated HRTEM images")
        except Exception as exc:  # noqa: BLE001 - the simulator is optional here
            print(f"HRTEM simulator not used: {exc}")
    return imgs


def broad_images(size: int, seed: int) -> list[np.ndarray]:
    """More kinds of micrograph-like images; none of the benchmark's images.

    Simulated HRTEM-like particles on amorphous carbon (the simulate
    package's fast sampler), crystal/crystal interfaces and grey-level
    coatings with random periods and levels, plain lattices, the PNNL LaO /
    MoO3 micrographs of ``../shared/data`` when present, and scikit-image's
    bundled photographs camera, coins, moon, cell, Hubble deep field and
    retina (grey). The NASA superalloy images and the brick / grass / gravel
    textures are left out: they are benchmark images.
    """
    from napari_interfaces.cluster import synthetic as syn
    from napari_interfaces.simulate.database import synthetic_sample

    rng = np.random.default_rng(seed + 7)
    out = []
    for _ in range(8):
        params = {
            "particle": {
                "count": int(rng.integers(2, 7)),
                "radius": float(rng.uniform(25, 80)),
                "d_spacing": float(rng.uniform(1.5, 4.0)),
                "contrast": float(rng.uniform(0.2, 0.5)),
            },
            "substrate": {"contrast": float(rng.uniform(0.08, 0.2))},
            "imaging": {
                "blur": float(rng.uniform(0.2, 0.6)),
                "dose": float(rng.uniform(200, 2000)),
            },
        }
        img, _, _ = synthetic_sample(params, {"crop": size, "pixel_size": 0.5}, rng)
        out.append(img)
    for i in range(6):
        p = rng.uniform(3.5, 12.0, 2)
        lv = rng.uniform(0.3, 0.7, 2)
        out.append(
            syn.interface_micrograph((size, size), tuple(p), tuple(lv), seed=seed + 200 + i)[0]
        )
        lv3 = tuple(rng.uniform(0.2, 0.8, 3))
        out.append(
            syn.coating_cross_section(
                (size, size), lv3, grain=float(rng.uniform(1.5, 6)), seed=seed + 300 + i
            )[0]
        )
        out.append(syn.lattice_image((size, size), float(rng.uniform(3, 16)), seed=seed + 400 + i))
    shared = ROOT.parent / "shared" / "data" / "micrographs"
    for name in ("pnnl_LaO.png", "pnnl_MoO3.tiff"):
        if (shared / name).is_file():
            from napari_interfaces.cluster.images import prepare_images

            out.append(prepare_images(shared / name)[..., 0])
    from skimage import color, data

    for name in ("camera", "coins", "moon", "cell", "hubble_deep_field", "retina"):
        try:
            x = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a missing bundled image is skipped
            continue
        x = color.rgb2gray(x) if x.ndim == 3 else x.astype(np.float32)
        out.append(x)
    return [((x - x.min()) / (np.ptp(x) + 1e-9)).astype(np.float32) for x in out]


def _resample(c: np.ndarray, size: int) -> np.ndarray:
    from scipy import ndimage as ndi

    if c.shape[0] == size:
        return c
    return ndi.zoom(c, size / c.shape[0], order=1)[:size, :size]


def sample_pairs(imgs, batch, chip, size_in, rng, scale=(1.0, 1.0), gamma=False):
    import torch

    a = np.empty((batch, 1, chip, chip), np.float32)
    b = np.empty_like(a)
    for i in range(batch):
        img = imgs[rng.integers(len(imgs))]
        h, w = img.shape
        # scale augmentation: both views cut at one random scale (+-15 % between them)
        s0 = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
        sides = [
            int(np.clip(round(chip * s0 * rng.uniform(0.87, 1.15)), 8, min(h, w) - 1))
            for _ in range(2)
        ]
        big = max(sides)
        y, x = rng.integers(0, h - big), rng.integers(0, w - big)
        dy, dx = rng.integers(-big // 4, big // 4 + 1, 2)
        y2, x2 = int(np.clip(y + dy, 0, h - big)), int(np.clip(x + dx, 0, w - big))
        for out, (yy, xx), side in ((a, (y, x), sides[0]), (b, (y2, x2), sides[1])):
            c = _resample(img[yy : yy + side, xx : xx + side], chip)
            if gamma:
                c = np.clip(c, 0, None) ** float(np.exp(rng.uniform(-0.4, 0.4)))
            c = np.rot90(c, rng.integers(4))
            if rng.random() < 0.5:
                c = c[:, ::-1]
            c = (
                c * rng.uniform(0.6, 1.4)
                + rng.uniform(-0.2, 0.2)
                + rng.normal(0, rng.uniform(0, 0.1), c.shape)
            )
            out[i, 0] = c
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = []
    for t in (ta, tb):
        t = (t - t.mean((2, 3), keepdim=True)) / (t.std((2, 3), keepdim=True) + 1e-3)
        if chip != size_in:
            t = torch.nn.functional.interpolate(t, size=(size_in, size_in), mode="area")
        out.append(t)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--chip", type=int, default=64, help="chip size cut from the images")
    ap.add_argument("--input", type=int, default=32, help="encoder input size")
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--n-synth", type=int, default=24)
    ap.add_argument("--n-hrtem", type=int, default=6)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument(
        "--corpus",
        choices=["synthetic", "broad"],
        default="synthetic",
        help="broad adds simulated particles, interfaces, coatings, lattices, PNNL and "
        "scikit-image photographs (issue 15)",
    )
    ap.add_argument("--scale-min", type=float, default=1.0, help="scale augmentation range")
    ap.add_argument("--scale-max", type=float, default=1.0)
    ap.add_argument("--gamma", action="store_true", help="gamma (intensity) augmentation")
    args = ap.parse_args(argv)

    import torch

    from napari_interfaces.cluster.nets import ChipEncoder
    from napari_interfaces.core.weights import sha256

    torch.set_num_threads(max(1, min(2, args.threads)))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    imgs = make_images(args.n_synth, args.n_hrtem, args.size, args.seed)
    if args.corpus == "broad":
        imgs += broad_images(args.size, args.seed)
    print(f"{len(imgs)} training images in {time.time() - t0:.1f} s")
    model = ChipEncoder(dim=args.dim, width=args.width)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    labels = torch.arange(args.batch)
    for step in range(args.steps):
        a, b = sample_pairs(
            imgs,
            args.batch,
            args.chip,
            args.input,
            rng,
            (args.scale_min, args.scale_max),
            args.gamma,
        )
        za, zb = model(a), model(b)
        logits = za @ zb.T / args.temperature
        loss = 0.5 * (
            torch.nn.functional.cross_entropy(logits, labels)
            + torch.nn.functional.cross_entropy(logits.T, labels)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            acc = (logits.argmax(1) == labels).float().mean().item()
            print(
                f"step {step:4d} loss {loss.item():.3f} top1 {acc:.2f} ({time.time() - t0:.0f} s)",
                flush=True,
            )
    model.eval()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    meta = {
        "architecture": "ChipEncoder",
        "dim": args.dim,
        "width": args.width,
        "input": args.input,
        "chip": args.chip,
        "objective": "spatial contrastive (NT-Xent), nearby chips as positives",
        "data": f"{args.n_synth} synthetic order/disorder lattices, {max(1, args.n_synth // 4)} texture mosaics, "
        f"up to {args.n_hrtem} simulated HRTEM images"
        + (
            "; broad corpus: 8 simulated particle images, 6 interfaces, 6 coatings, 6 lattices, "
            "PNNL LaO/MoO3, scikit-image camera/coins/moon/cell/hubble/retina"
            if args.corpus == "broad"
            else ""
        ),
        "augmentation": {
            "scale": [args.scale_min, args.scale_max],
            "gamma": bool(args.gamma),
            "contrast": [0.6, 1.4],
            "offset": [-0.2, 0.2],
            "noise_sd": [0, 0.1],
        },
        "images": len(imgs),
        "steps": args.steps,
        "batch": args.batch,
        "temperature": args.temperature,
        "seed": args.seed,
        "train_seconds": round(time.time() - t0, 1),
        "sha256": sha256(out),
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    print(f"wrote {out} ({meta['sha256'][:12]}...) in {meta['train_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
