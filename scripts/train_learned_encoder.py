"""Train the ``learned`` chip encoder self-supervised; writes the shipped weights.

Data (no labels used): synthetic lattice micrographs with controlled disorder
(:func:`napari_interfaces.cluster.synthetic.order_disorder_micrograph` with
random lattice periods, orientations and noise) plus, when the project's
HRTEM simulator runs, simulated HRTEM images of nanoparticles on amorphous
carbon (``napari_interfaces.simulate.hrtem.simulate_sample``).

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
            from napari_interfaces.simulate.hrtem import simulate_sample

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
                x = s["image"].astype(np.float32)
                imgs.append((x - x.min()) / (np.ptp(x) + 1e-9))
            print(f"added {n_hrtem} simulated HRTEM images")
        except Exception as exc:  # noqa: BLE001 - the simulator is optional here
            print(f"HRTEM simulator not used: {exc}")
    return imgs


def sample_pairs(imgs, batch, chip, size_in, rng):
    import torch

    a = np.empty((batch, 1, chip, chip), np.float32)
    b = np.empty_like(a)
    for i in range(batch):
        img = imgs[rng.integers(len(imgs))]
        h, w = img.shape
        y, x = rng.integers(0, h - chip), rng.integers(0, w - chip)
        dy, dx = rng.integers(-chip // 4, chip // 4 + 1, 2)
        y2, x2 = int(np.clip(y + dy, 0, h - chip)), int(np.clip(x + dx, 0, w - chip))
        for out, (yy, xx) in ((a, (y, x)), (b, (y2, x2))):
            c = img[yy : yy + chip, xx : xx + chip]
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
    args = ap.parse_args(argv)

    import torch

    from napari_interfaces.cluster.nets import ChipEncoder
    from napari_interfaces.core.weights import sha256

    torch.set_num_threads(min(2, args.threads))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    imgs = make_images(args.n_synth, args.n_hrtem, args.size, args.seed)
    print(f"{len(imgs)} training images in {time.time() - t0:.1f} s")
    model = ChipEncoder(dim=args.dim, width=args.width)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    labels = torch.arange(args.batch)
    for step in range(args.steps):
        a, b = sample_pairs(imgs, args.batch, args.chip, args.input, rng)
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
        f"up to {args.n_hrtem} simulated HRTEM images",
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
