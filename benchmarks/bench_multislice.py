"""Benchmark: one multislice exit wave against the bare FFT floor and abTEM.

The issue's case: a 5 nm Au particle (~3,900 atoms, [110]) on 102.4 x 102.4 x
50 Å amorphous carbon (~52,500 atoms), 200 kV, 1024² at 0.1 Å, 2 Å slices
(52 slices, 51 holding atoms).

    python benchmarks/bench_multislice.py                 # CPU (torch/MKL), + abTEM
    python benchmarks/bench_multislice.py --quick         # 51.2 Å / 512² version
    python benchmarks/bench_multislice.py --device cuda   # GPU: CUDA (torch) + OpenCL GPUs
    python benchmarks/bench_multislice.py --db 4          # + database throughput

Everything is measured interleaved in the same run (floor, ours, abTEM, floor,
ours, abTEM, ...), ``--repeat`` times, and reported as medians with ratios, so
that load from other jobs on a shared machine hits all columns alike.

* **FFT floor**: ``n_slices`` x (fft2 + multiply + ifft2) of the grid's
  complex64 wave with the fastest FFT library here (torch/MKL, scipy's
  pocketfft, pyFFTW; each timed, the fastest counts) -- the propagation alone.
* **ours**: :func:`napari_interfaces.simulate.hrtem.simulate_exit_waves`
  (structure -> exit wave: potential, transmission, propagation).
* **abTEM**: ``Potential(projection="infinite") -> PlaneWave.multislice``
  (FFTW), with its default FFTW threads (1) and with one per core; the faster
  counts. abTEM is optional and never imported by the package.

Then: a stage-by-stage profile of our exit wave (``--profile``), the phase
correlation of the two exit waves, and with ``--db N`` the database throughput
(``rangel_dacosta_2024``) through :mod:`bench_database`. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))
warnings.filterwarnings("ignore")

ENERGY = 200.0


def _scene(quick: bool):
    from napari_interfaces.simulate.structures import build_scene

    if quick:
        sc = build_scene(extent=(51.2, 51.2), substrate_thickness=25, particle_diameter=25,
                         orientation=(1, 1, 0), rng=0)  # fmt: skip
    else:
        sc = build_scene(extent=(102.4, 102.4), substrate_thickness=50, particle_diameter=50,
                         orientation=(1, 1, 0), rng=0)  # fmt: skip
    atoms = sc.atoms
    atoms.cell[2, 2] = np.ceil(atoms.cell[2, 2] / 2) * 2  # equal 2 Å slices for both codes
    return sc, atoms


# ---------------------------------------------------------------------------- floor


def _floor_fns(shape, n_slices: int, device: str):
    """``{library: fn}``, each fn running n_slices x (fft2, multiply, ifft2) once."""
    rng = np.random.default_rng(0)
    psi0 = np.exp(1j * rng.random(shape)).astype(np.complex64)
    prop0 = np.exp(-1j * rng.random(shape)).astype(np.complex64)
    fns = {}
    try:
        import torch

        dev = "cuda" if device.startswith("cuda") else "cpu"
        if dev == "cpu" or torch.cuda.is_available():
            p = torch.from_numpy(prop0).to(dev)
            w = torch.from_numpy(psi0).to(dev)

            def f_torch(w=w, p=p, threads=None):
                prev = torch.get_num_threads()
                if threads:
                    torch.set_num_threads(threads)
                x = w
                for _ in range(n_slices):
                    x = torch.fft.ifft2(torch.fft.fft2(x).mul_(p))
                if dev == "cuda":
                    torch.cuda.synchronize()
                torch.set_num_threads(prev)

            if dev == "cuda":
                fns["torch cuda (cuFFT)"] = f_torch
            else:
                nt = torch.get_num_threads()
                fns[f"torch cpu (MKL, {nt} threads)"] = f_torch
                if nt > 1:
                    fns["torch cpu (MKL, 1 thread)"] = lambda: f_torch(threads=1)
    except ImportError:
        pass
    if device.startswith("cuda"):
        return fns
    import scipy.fft

    from napari_interfaces.simulate.backends import FFT_WORKERS

    def f_scipy(w=psi0, p=prop0):
        x = w.copy()
        for _ in range(n_slices):
            x = scipy.fft.fft2(x, workers=FFT_WORKERS, overwrite_x=True)
            x *= p
            x = scipy.fft.ifft2(x, workers=FFT_WORKERS, overwrite_x=True)

    fns["scipy.fft (pocketfft)"] = f_scipy
    try:
        import pyfftw

        a = pyfftw.empty_aligned(shape, np.complex64)
        b = pyfftw.empty_aligned(shape, np.complex64)
        fwd = pyfftw.FFTW(a, b, axes=(0, 1), threads=os.cpu_count(), flags=("FFTW_MEASURE",))
        inv = pyfftw.FFTW(b, a, axes=(0, 1), direction="FFTW_BACKWARD",
                          threads=os.cpu_count(), flags=("FFTW_MEASURE",))  # fmt: skip

        def f_fftw(w=psi0, p=prop0):
            a[:] = w
            for _ in range(n_slices):
                fwd()
                np.multiply(b, p, out=b)
                inv()

        fns["pyFFTW (MEASURE plans)"] = f_fftw
    except ImportError:
        pass
    return fns


# ---------------------------------------------------------------------------- codes


#: our two band-limit schemes (NAPARI_INTERFACES_MULTISLICE_BANDLIMIT), the default first
MODES = ("propagator", "transmission")


def _ours(atoms, device: str, deposit: str = "bspline", mode: str = "propagator",
          sampling: float = 0.1):  # fmt: skip
    from napari_interfaces.simulate.hrtem import simulate_exit_waves
    from napari_interfaces.simulate.multislice import using_bandlimit_scheme

    with using_bandlimit_scheme(mode):
        return simulate_exit_waves(atoms, ENERGY, sampling, 2.0, "lobato", device=device,
                                   deposit=deposit)  # fmt: skip


def _abtem(atoms, threads: int = 1, sampling: float = 0.1):
    import abtem

    abtem.config.set({"fftw.threads": threads})
    pot = abtem.Potential(atoms, sampling=sampling, slice_thickness=2, projection="infinite",
                          parametrization="lobato")  # fmt: skip
    wave = abtem.PlaneWave(energy=ENERGY * 1e3).multislice(pot).compute(progress_bar=False)
    return np.asarray(wave.array).T


def _timed(fn, cpu: list | None = None) -> float:
    """Wall seconds of ``fn()``; its process CPU seconds are appended to ``cpu``."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    t = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return t


# ---------------------------------------------------------------------------- profile


def profile_stages(atoms, device: str, repeat: int = 3) -> list[tuple[str, float, float]]:
    """Seconds per stage of one exit wave: ``(stage, old per-slice loop, new batched)``.

    Replays both pipelines with the engine's own building blocks, single-threaded,
    with a CPU-time clock (``time.thread_time``, so that other jobs on the
    machine do not inflate it) around each stage (medians of ``repeat``). "old" is the per-slice loop of
    the previous release (deposit + rfft2 per element, irfft2, exp, band-limit
    FFT pair, propagation FFT pair, one slice at a time); "new" is
    :func:`napari_interfaces.simulate.multislice.multislice` (batched).
    """
    from napari_interfaces.simulate.backends import get_backend
    from napari_interfaces.simulate.constants import interaction_parameter
    from napari_interfaces.simulate.multislice import bandlimit_mask, fresnel_propagator
    from napari_interfaces.simulate.potential import (
        ProjectedPotential,
        deposit_bspline,
        deposit_slices,
    )

    b = get_backend(device)
    sync = b.synchronize
    pos, num, cell = atoms.positions, atoms.numbers, np.asarray(atoms.cell[:])
    pot = ProjectedPotential(pos, num, cell, 0.1, 2.0, "lobato", ENERGY)
    g = pot.grid
    dx, dy = g.sampling
    sigma = interaction_parameter(ENERGY)
    mask = b.asarray(bandlimit_mask(g))
    prop = b.asarray(fresnel_propagator(g, 2.0, ENERGY))
    occ = [i for i in range(pot.num_slices) if len(pot.atoms_in_slice(i))]
    for z in np.unique(num):
        pot._device_factor(int(z), b)  # cached form factors, as in a warm run
        pot._device_factor(int(z), b, real=False)
    stages = ["deposit", "potential FFTs (+ form factors)", "transmission exp(i sigma V)",
              "band limit (FFT pair + mask)", "propagation (x t, FFT pair, x P)",
              "copies / dtype / transfers"]  # fmt: skip

    clock = time.thread_time

    def old_run(acc):
        psi = b.ones(g.shape)
        for i in occ:
            sel = pot.atoms_in_slice(i)
            nums = pot.numbers[sel]
            t0 = clock()
            deps = []
            for z in np.unique(nums):
                s = sel[nums == z]
                deps.append((int(z), deposit_bspline(pos[s, 0] / dx, pos[s, 1] / dy, g.shape)))
            t1 = clock()
            deps = [(z, d.astype(np.float32)) for z, d in deps]
            t2 = clock()
            total = None
            for z, d in deps:
                spec = b.rfft2(d)
                spec *= pot._device_factor(z, b)
                total = spec if total is None else total + spec
            v = b.irfft2(total, g.shape)
            sync()
            t3 = clock()
            t = b.transmission(b.asarray(v), sigma)
            sync()
            t4 = clock()
            t = b.ifft2(b.multiply(b.fft2(t), mask))
            sync()
            t5 = clock()
            psi = b.multiply(psi, t)
            psi = b.ifft2(b.multiply(b.fft2(psi), prop))
            sync()
            t6 = clock()
            for k, dt in enumerate([t1 - t0, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t2 - t1]):
                acc[stages[k]] += dt
        t0 = clock()
        b.to_host(psi)
        acc[stages[5]] += clock() - t0

    def new_run(acc):
        psi = b.ones(g.shape)
        per = 2**25 if b.batched else 1  # as multislice._Transmissions
        batch = max(2 if b.pairs else 1, min(16, per // (8 * g.shape[0] * g.shape[1])))
        order = 4
        ny, nx = g.shape
        for c in range(0, len(occ), batch):
            chunk = occ[c : c + batch]
            sels = [pot.atoms_in_slice(i) for i in chunk]
            atoms_ = np.concatenate(sels)
            slot = np.repeat(np.arange(len(chunk)), [len(s) for s in sels])
            nums = pot.numbers[atoms_]
            paired = len(chunk) == 2 and b.pairs
            t0 = clock()
            deps = []
            for z in np.unique(nums):
                k = nums == z
                a = atoms_[k]
                if paired:  # as ProjectedPotential.pair
                    buf = np.zeros((ny, nx, 2), np.float32)
                    deposit_slices(pos[a, 0] / dx, pos[a, 1] / dy, slot[k], (2, ny, nx), order,
                                   out=buf.transpose(2, 0, 1))  # fmt: skip
                    deps.append((int(z), None, buf.view(np.complex64)[..., 0]))
                    continue
                used, local = np.unique(slot[k], return_inverse=True)
                shape = (len(used), *g.shape)
                deps.append((int(z), used, deposit_slices(pos[a, 0] / dx, pos[a, 1] / dy,
                                                          local, shape, order)))  # fmt: skip
            t1 = clock()
            total = None
            if paired:
                for z, _, d in deps:
                    spec = b.fft2(b.asarray(d))
                    spec = b.multiply(spec, pot._device_factor(z, b, real=False))
                    total = spec if total is None else b.add_(total, spec)
                v = b.real_parts(b.ifft2(total))
            else:  # as ProjectedPotential.batch_fourier
                for z, used, d in deps:
                    spec = b.rfft2(d)
                    spec *= pot._device_factor(z, b)
                    if len(used) == len(chunk):
                        total = spec if total is None else b.add_(total, spec)
                    else:
                        if total is None:
                            total = b.zeros((len(chunk), ny, nx // 2 + 1))
                        total = b.index_add_(total, used, spec)
                v = b.irfft2(total, g.shape)
            sync()
            t2 = clock()
            tt = b.phase_factors(v, sigma)
            sync()
            t3 = clock()
            tt = b.bandlimit(tt, mask)
            sync()
            t4 = clock()
            for j in range(len(chunk)):
                psi = b.multiply(psi, tt[j])
                psi = b.ifft2(b.multiply(b.fft2(psi), prop))
            sync()
            t5 = clock()
            for k, dt in enumerate([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]):
                acc[stages[k]] += dt
        t0 = clock()
        b.to_host(psi)
        acc[stages[5]] += clock() - t0

    res = {"old": {s: [] for s in stages}, "new": {s: [] for s in stages}}
    for _ in range(repeat + 1):  # first round warms up (numba, plans)
        for name, fn in (("old", old_run), ("new", new_run)):
            acc = dict.fromkeys(stages, 0.0)
            with b.limit_threads(1):
                fn(acc)
            for s in stages:
                res[name][s].append(acc[s])
    return [(s, statistics.median(res["old"][s][1:]), statistics.median(res["new"][s][1:]))
            for s in stages]  # fmt: skip


# ---------------------------------------------------------------------------- main


def _header(args) -> None:
    print(f"# bench_multislice ({'quick' if args.quick else 'full'} case, device {args.device})\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"- machine: {platform.platform()}, {os.cpu_count()} CPU(s), "
          f"Python {sys.version.split()[0]}")  # fmt: skip
    try:
        import torch

        print(f"- torch {torch.__version__}, {torch.get_num_threads()} intra-op threads")
    except ImportError:
        pass
    try:
        print(f"- load average at start: {os.getloadavg()[0]:.1f} "
              f"(> {os.cpu_count()} means other jobs share the CPUs)")  # fmt: skip
    except OSError:
        pass


def _phase_corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.angle(a).ravel(), np.angle(b).ravel())[0, 1])


def _coarsen(w: np.ndarray, shape) -> np.ndarray:
    """``w``'s Fourier components inside the 2/3 band of a ``shape`` grid of the same
    cell, as a wave on that grid (``w`` on a grid at least as fine)."""
    ny, nx = shape
    fy = np.fft.fftfreq(ny, 1 / ny).astype(int) % w.shape[0]
    fx = np.fft.fftfreq(nx, 1 / nx).astype(int) % w.shape[1]
    spec = np.fft.fft2(w)[np.ix_(fy, fx)] * (ny * nx / w.size)
    ky = np.fft.fftfreq(ny)[:, None] * 2
    kx = np.fft.fftfreq(nx)[None, :] * 2
    spec[ky**2 + kx**2 > (2 / 3) ** 2] = 0  # units of the Nyquist frequency
    return np.fft.ifft2(spec)


def _check_device(device: str) -> str | None:
    """One-line reason why ``device`` cannot run here, or None."""
    if device.startswith("cuda"):
        try:
            import torch
        except ImportError:
            return "--device cuda needs torch"
        if not torch.cuda.is_available():
            return "--device cuda: no CUDA GPU here (torch.cuda.is_available() is False)"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="51.2 Å / 512² case")
    ap.add_argument("--device", default="cpu",
                    help="cpu (torch/MKL; default), numpy, cuda[:N], opencl:N")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=5, help="interleaved repetitions (medians)")
    ap.add_argument("--no-abtem", action="store_true")
    ap.add_argument("--profile", action="store_true", help="stage-by-stage profile (old vs new)")
    ap.add_argument("--converged", action="store_true",
                    help="compare both band-limit schemes with a 0.05 Å exit wave")  # fmt: skip
    ap.add_argument("--db", type=int, default=0, metavar="N",
                    help="database throughput with N samples (rangel_dacosta_2024)")  # fmt: skip
    ap.add_argument("--db-spec", default="rangel_dacosta_2024")
    args = ap.parse_args(argv)

    why = _check_device(args.device)
    if why:
        print(why, file=sys.stderr)
        return 2
    _header(args)
    sc, atoms = _scene(args.quick)
    n = len(atoms)
    npart = sc.info["n_particle_atoms"]
    print(f"- structure: {n} atoms ({npart} Au + {n - npart} C), cell "
          f"{' x '.join(f'{x:.1f}' for x in atoms.cell.lengths())} Å")  # fmt: skip

    from napari_interfaces.simulate import backends

    devices = [args.device]
    if args.device.startswith("cuda"):  # the GPU run also measures OpenCL GPUs
        from napari_interfaces.core.opencl import list_devices

        devs, msg = list_devices()
        devices += [f"opencl:{d.index}" for d in devs if d.kind == "GPU"]
        print(f"- OpenCL: {msg}")
    for dev in devices:
        b = backends.get_backend(dev)
        print(
            f"- backend for {dev}: {b.name}"
            + (f" (FFT {b.fft_mode})" if hasattr(b, "fft_mode") else "")
        )

    ew_p = _ours(atoms, devices[0])  # warm-up: imports, plans, numba, form factors
    ew = _ours(atoms, devices[0], mode="transmission")
    for dev in devices[1:]:
        _ours(atoms, dev)  # OpenCL: kernel and VkFFT compilation
    shape = ew.shape
    n_slices = int(np.ceil(atoms.cell[2, 2] / 2.0 - 1e-9))
    print(f"- grid {shape[1]} x {shape[0]}, {n_slices} slices of 2 Å, {ENERGY:g} kV\n")

    floors = _floor_fns(shape, n_slices, args.device)
    for f in floors.values():
        f()
    has_abtem = False
    if not args.no_abtem and not args.device.startswith("cuda"):
        try:
            import abtem  # noqa: F401

            has_abtem = True
        except ImportError:
            print("abTEM is not installed (pip install abtem): no side-by-side timing\n")
    ab_threads = sorted({1, os.cpu_count() or 1})
    if has_abtem:
        for th in ab_threads:
            ab_wave = _abtem(atoms, th)  # warm-up (FFTW plans)

    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def record(key, fn):
        times.setdefault(key, []).append(_timed(fn, cpu.setdefault(key, [])))

    def ours_key(dev, mode):
        return f"ours: {dev}, band limit on {mode}"

    for _ in range(args.repeat):  # interleaved
        for name, f in floors.items():
            record(f"floor: {name}", f)
        for dev in devices:
            for mode in MODES:
                record(ours_key(dev, mode), lambda d=dev, m=mode: _ours(atoms, d, mode=m))
        if has_abtem:
            for th in ab_threads:
                record(f"abTEM {abtem.__version__}, FFTW threads {th}",
                       lambda t=th: _abtem(atoms, t))  # fmt: skip
    if times:  # --repeat 0: agreement only
        med = {k: statistics.median(v) for k, v in times.items()}
        floor_key = min((k for k in med if k.startswith("floor")), key=med.get)
        ab_key = min((k for k in med if k.startswith("abTEM")), key=med.get, default=None)
        print(f"## One exit wave (s; median of {args.repeat} interleaved runs)\n")
        print("| what | median | min | max | / FFT floor | / abTEM | CPU s (median) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for k, v in times.items():
            rf = med[k] / med[floor_key]
            ra = f"{med[k] / med[ab_key]:.2f}" if ab_key else "-"
            c = statistics.median(cpu[k])
            print(
                f"| {k} | {med[k]:.3f} | {min(v):.3f} | {max(v):.3f} | {rf:.2f} | {ra} | {c:.3f} |"
            )
        print(f"\nFFT floor = fastest library ({floor_key[7:]}): "
              f"{n_slices} x (fft2 + multiply + ifft2) of a {shape[1]}² complex64 wave.")  # fmt: skip
        for dev in devices:
            for mode in MODES:
                k = ours_key(dev, mode)
                line = f"- {k}: {med[k] / med[floor_key]:.2f} x the FFT floor (target <= 2)"
                if ab_key:
                    line += f", {med[k] / med[ab_key]:.2f} x abTEM (target <= 0.33)"
                print(line)
        # same-run, per-repeat ratios (robust against drifting load)
        for dev in devices:
            for mode in MODES:
                k = ours_key(dev, mode)
                rf = [a / b for a, b in zip(times[k], times[floor_key])]
                line = f"- {k}, per repeat: / floor " + ", ".join(f"{x:.2f}" for x in rf)
                if ab_key:
                    ra = [a / b for a, b in zip(times[k], times[ab_key])]
                    line += "; / abTEM " + ", ".join(f"{x:.2f}" for x in ra)
                print(line)
        try:
            print(f"- load average at the end: {os.getloadavg()[0]:.1f}")
        except OSError:
            pass
        print()

    waves = {f"ours, band limit on {m}": w.waves[0] for m, w in zip(MODES, (ew_p, ew))}
    if has_abtem:
        compat = _ours(atoms, devices[0], deposit="abtem", mode="transmission").waves[0]
        print("## Agreement with abTEM (exit waves)\n")
        print("| comparison | phase correlation with abTEM |")
        print("|---|---:|")
        for name, w in waves.items():
            print(
                f"| {name} (cubic B-spline potential, default) | {_phase_corr(w, ab_wave):.4f} |"
            )
        print(f"| ours with deposit='abtem' (abTEM's potential approximation), "
              f"band limit on transmission | {_phase_corr(compat, ab_wave):.5f} |")  # fmt: skip
        print()
    if args.converged:
        refs = {
            "ours at 0.05 Å (band limit on transmission)": _ours(
                atoms, devices[0], mode="transmission", sampling=0.05
            ).waves[0]
        }
        if has_abtem:
            refs["abTEM at 0.05 Å"] = _abtem(atoms, os.cpu_count() or 1, sampling=0.05)
            waves["abTEM at 0.1 Å"] = ab_wave
        print("## Against converged references (0.05 Å)\n")
        print("Each wave's frequencies inside this grid's 2/3 band, against the fine wave's.\n")
        print(
            "| wave at 0.1 Å | reference | rms difference | max difference | phase correlation |"
        )
        print("|---|---|---:|---:|---:|")
        for rname, fine in refs.items():
            ref = _coarsen(fine, shape)
            for name, w in waves.items():
                c = _coarsen(w, shape)
                d = c - ref
                print(f"| {name} | {rname} | {np.sqrt(np.mean(np.abs(d) ** 2)):.4f} "
                      f"| {np.abs(d).max():.4f} | {_phase_corr(c, ref):.5f} |")  # fmt: skip
        print()

    if args.profile:
        rows = profile_stages(atoms, devices[0])
        to = sum(r[1] for r in rows)
        tn = sum(r[2] for r in rows)
        print(f"## Stage profile of one exit wave ({devices[0]}; s, median of 3)\n")
        print("| stage | per-slice loop (before) | batched (now) |")
        print("|---|---:|---:|")
        for s, o, nw in rows:
            print(f"| {s} | {o:.3f} | {nw:.3f} |")
        print(f"| **sum** | **{to:.3f}** | **{tn:.3f}** |")
        print()

    if args.db:
        import bench_database as bd

        work = REPO / "benchmarks" / "_work"
        work.mkdir(parents=True, exist_ok=True)
        print(f"## Database throughput ({args.db_spec}, n = {args.db})\n")
        print("| generator | samples/min |")
        print("|---|---:|")
        for dev in devices:
            workers = (1,) if dev.startswith(("cuda", "opencl")) else (1, 2)
            for w in workers:
                spm, _ = bd.ours(args.db_spec, args.db, w, work, dev)
                print(f"| ours ({dev}), {w} worker(s) | {spm:.2f} |", flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
