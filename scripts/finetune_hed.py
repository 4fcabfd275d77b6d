"""Fine-tune the BSDS500 HED on composition slices of synthetic APT specimens.

Transfer learning as in Madireddy et al. (2019), then one step further: the
natural-image HED is trained a little more on slices whose true interfaces
are known. Training specimens come from
``two_phase`` of ``tests/_apt_interfaces_synth.py`` with randomized
geometry (tilted layers, 1-3 spheres, gyroid networks, and single-phase
specimens as negatives), random compositions, densities and interface widths,
seeds 1000+ (the benchmark uses seeds < 100: disjoint). The slices are
preprocessed exactly as :func:`napari_interfaces.apt.edges.edge_probability`
does (smoothing, channel choice, normalization, RGB, 2x zoom). Target edges:
pixels within ``--edge-nm`` of the true interface.

Frugal by design (a shared 2-core CPU): 64x64 crops, the first two VGG
blocks frozen, a few hundred Adam steps. Writes an fp16 state dict (about
29 MB) and prints its SHA-256 for ``segment/hed_weights.py``.

    python scripts/finetune_hed.py --iters 300 --out src/napari_interfaces/weights/hed_apt_finetuned.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_interfaces.apt.edges import composition_images, normalize_channels
from napari_interfaces.apt.interfaces import volume_from_atoms
from napari_interfaces.apt.phases import select_channels
from napari_interfaces.segment.hed import HED, hed_loss, preprocess
from napari_interfaces.segment.hed_weights import bsds500_state_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _apt_interfaces_synth import two_phase  # test helper, source checkout only

ELEMENTS = ["Al", "Cr", "Ni"]


def random_specimen(seed: int):
    rng = np.random.default_rng(seed)
    geometry = rng.choice(
        ["layered", "isolated", "interconnected", "single"], p=[0.3, 0.3, 0.3, 0.1]
    )
    a = rng.dirichlet(np.ones(3) * 2)
    b = a + rng.normal(0, rng.uniform(0.05, 0.3), 3)
    b = np.clip(b, 0.01, None)
    b /= b.sum()
    comp_a = dict(zip(ELEMENTS, a))
    comp_b = dict(zip(ELEMENTS, b))
    size = float(rng.choice([32.0, 36.0]))
    atoms, truth = two_phase(
        str(geometry),
        (size, size, size),
        density=float(rng.uniform(12, 40)),
        width_nm=float(rng.uniform(0.2, 1.0)),
        comp_a=comp_a,
        comp_b=comp_b,
        seed=seed,
        randomize=True,
    )
    return atoms, truth


def slices_with_targets(seed: int, edge_nm: float, zoom: int = 2):
    """(images (N, H, W, 3) float in [0,1], targets (N, H, W) 0/1) over all three axes."""
    from napari_interfaces.apt.edges import _zoom_stack

    atoms, truth = random_specimen(seed)
    vol = volume_from_atoms(atoms, 1.0)
    mask = vol.specimen_mask()
    comp, _ = vol.composition(1.0)
    ch = select_channels(comp, mask, vol.elements)
    rgb = composition_images(normalize_channels(comp[ch], mask))
    lo = np.asarray(vol.grid.origin) - 0.5  # zyx of the grid's lower corner
    out_i, out_t = [], []
    shape = np.asarray(vol.shape)
    for ax in range(3):
        imgs = _zoom_stack(np.ascontiguousarray(np.moveaxis(rgb, ax, 0)), zoom)
        # centres: slice axis at voxel centres, in-plane at zoomed pixel centres
        axes_other = [a for a in range(3) if a != ax]
        ci = lo[ax] + np.arange(shape[ax]) + 0.5
        c1 = lo[axes_other[0]] + (np.arange(shape[axes_other[0]] * zoom) + 0.5) / zoom
        c2 = lo[axes_other[1]] + (np.arange(shape[axes_other[1]] * zoom) + 0.5) / zoom
        g = np.meshgrid(ci, c1, c2, indexing="ij")
        zyx = np.zeros((*g[0].shape, 3))
        zyx[..., ax], zyx[..., axes_other[0]], zyx[..., axes_other[1]] = g
        sdf = truth["sdf"](zyx.reshape(-1, 3)[:, ::-1]).reshape(g[0].shape)
        target = (np.abs(sdf) < edge_nm).astype(np.float32)
        out_i.append(imgs)
        out_t.append(target)
    return out_i, out_t


def crops(images, targets, n, size, rng):
    xs, ys = [], []
    for _ in range(n):
        k = rng.integers(len(images))
        im, t = images[k], targets[k]
        i = rng.integers(len(im))
        h, w = im.shape[1:3]
        y0 = rng.integers(0, max(h - size, 0) + 1)
        x0 = rng.integers(0, max(w - size, 0) + 1)
        a = im[i, y0 : y0 + size, x0 : x0 + size]
        b = t[i, y0 : y0 + size, x0 : x0 + size]
        ph, pw = size - a.shape[0], size - a.shape[1]
        if ph > 0 or pw > 0:
            a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
            b = np.pad(b, ((0, ph), (0, pw)), mode="edge")
        if rng.random() < 0.5:
            a, b = a[:, ::-1], b[:, ::-1]
        if rng.random() < 0.5:
            a, b = a.transpose(1, 0, 2), b.T
        xs.append(preprocess(np.ascontiguousarray(a)))
        ys.append(np.ascontiguousarray(b)[None])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--datasets", type=int, default=24)
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--freeze", type=int, default=2, help="VGG blocks kept frozen")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--edge-nm", type=float, default=0.6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="src/napari_interfaces/weights/hed_apt_finetuned.pt")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    t0 = time.time()
    images, targets = [], []
    for s in range(args.seed0, args.seed0 + args.datasets):
        i, t = slices_with_targets(s, args.edge_nm)
        images += i
        targets += t
    print(
        f"data: {args.datasets} specimens, {sum(len(i) for i in images)} slices, {time.time() - t0:.0f} s",
        flush=True,
    )

    model = HED()
    model.load_state_dict(bsds500_state_dict())
    model.freeze_blocks(args.freeze)
    model.train()
    trunk = [p for b in model.blocks for p in b.parameters() if p.requires_grad]
    heads = list(model.side.parameters()) + list(model.fuse.parameters())
    opt = torch.optim.Adam(
        [{"params": trunk, "lr": args.lr * 0.1}, {"params": heads, "lr": args.lr}]
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iters)
    t0 = time.time()
    running = None
    for it in range(1, args.iters + 1):
        x, y = crops(images, targets, args.batch, args.crop, rng)
        loss = hed_loss(model(x), y) / (args.crop * args.crop)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        lv = float(loss.detach())
        running = lv if running is None else 0.95 * running + 0.05 * lv
        if it % 20 == 0 or it == 1:
            print(f"iter {it:4d}  loss {running:.4f}  {time.time() - t0:.0f} s", flush=True)
    model.eval()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, out)
    from napari_interfaces.core.weights import sha256

    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) sha256 {sha256(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
