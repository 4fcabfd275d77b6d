"""Database throughput: samples per minute with 1 and 2 dask workers, beside abTEM.

    python benchmarks/bench_database.py [--n 24] [--spec hrtem_default] [--no-abtem]

Generates ``--n`` samples of a shipped spec (default ``hrtem_default``: 256²
at 0.2 Å/px, 300 kV, 0.2 Å multislice sampling, 20-80 Å a-C, one Au
particle; ``rangel_dacosta_2024`` is the paper's recipe, 1024² x 8 frozen
phonons) into fresh stores under ``benchmarks/_work/`` with a LocalCluster
of 1 and of 2 single-threaded workers (times include the cluster start),
with the default ``cpu`` backend and, for reference, the ``numpy`` one. Then
it makes the same samples (same structures from our builder, same imaging
parameters) with abTEM: potential + multislice of the full scene and of the
particle-only scene (for the labels, on the full grid), CTF with the same
defocus / Cs / astigmatism / focal-spread envelope, frozen phonons, Poisson
noise. abTEM runs (a) in this process with its default dask threads, and
(b) in 2 single-threaded processes over the samples (the same parallelism
as our 2 workers; process start-up included). abTEM is optional (``pip
install abtem``) and never imported by the package. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SPEC = "hrtem_default"
SEED = 9000


def ours(
    spec_name: str, n: int, workers: int, work: Path, device: str, scheme: str = "propagator"
) -> tuple[float, float]:
    """Samples/min (wall, cluster start included; and the run's own figure) of ours with
    the band-limit ``scheme`` (NAPARI_INTERFACES_MULTISLICE_BANDLIMIT, which the
    worker processes inherit)."""
    from napari_interfaces.simulate.database import generate_database
    from napari_interfaces.simulate.multislice import using_bandlimit_scheme

    out = work / f"bench_db_{device}_w{workers}_{scheme}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    with using_bandlimit_scheme(scheme):
        t0 = time.perf_counter()
        r = generate_database(spec_name, out, n=n, seed=SEED, workers=workers, device=device)
        wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return 60 * n / wall, r.samples_per_minute


def abtem_samples(spec_name: str, indices: list[int], single_thread: bool = False) -> float:
    """Make samples ``indices`` with abTEM; returns the seconds it took."""
    import abtem
    import numpy as np

    from napari_interfaces.simulate.spec import load_spec, sample_rng
    from napari_interfaces.simulate.structures import build_scene

    abtem.config.set({"device": "cpu", "fft": "fftw" if _has_fftw() else "numpy"})
    if single_thread:
        import dask

        dask.config.set(scheduler="synchronous")
        abtem.config.set({"fftw.threads": 1})
    spec = load_spec(spec_name)
    side = spec.crop * spec.pixel_size
    t0 = time.perf_counter()
    for i in indices:
        rng = sample_rng(SEED, i)
        p = spec.draw(rng)
        st, mic, det = p["structure"], p["microscope"], p["detector"]
        scene = build_scene(
            extent=(side, side),
            substrate_thickness=st["substrate_thickness"],
            n_particles=st["n_particles"],
            element=st["element"],
            shape=st["shape"],
            particle_diameter=st["particle_diameter"],
            orientation=st["orientation"],
            defects=st.get("defects"),
            rng=rng,
        )
        waves = []
        for atoms in (scene.atoms, scene.particles):
            n_ph = int(mic.get("frozen_phonons", 1))
            if n_ph > 1:
                atoms = abtem.FrozenPhonons(atoms, n_ph, sigmas=0.1, seed=i)
            pot = abtem.Potential(
                atoms,
                sampling=mic["sampling"],
                slice_thickness=mic["slice_thickness"],
                projection="infinite",
                parametrization="lobato",
            )
            waves.append(abtem.PlaneWave(energy=mic["energy_kv"] * 1e3).multislice(pot))
        ab = mic["aberrations"]
        ctf = abtem.CTF(
            defocus=mic["defocus"],  # abTEM and we both use defocus = -C10
            Cs=mic["cs"],
            astigmatism=ab["C12"],
            astigmatism_angle=ab["phi12"],
            focal_spread=mic["focal_spread"],
            energy=mic["energy_kv"] * 1e3,
        )
        img = waves[0].apply_ctf(ctf).intensity().compute(progress_bar=False).array
        part = waves[1].compute(progress_bar=False).array
        if img.ndim == 3:  # frozen phonons: incoherent mean
            img = img.mean(0)
        lam = img * det["dose"] * mic["sampling"] ** 2
        _noisy = rng.poisson(np.clip(lam, 0, None))
        votes = np.angle(part) > np.pi / 12
        _labels = votes.mean(0) > 0.5 if votes.ndim == 3 else votes
    return time.perf_counter() - t0


def _abtem_worker(args) -> float:
    spec_name, indices = args
    return abtem_samples(spec_name, indices, single_thread=True)


def abtem_processes(spec_name: str, n: int, processes: int = 2) -> float:
    """Samples/min of abTEM in ``processes`` single-threaded processes (start-up included)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        shards = [(spec_name, list(range(k, n, processes))) for k in range(processes)]
        t0 = time.perf_counter()
        with ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_abtem_worker, shards))
        return 60 * n / (time.perf_counter() - t0)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cpu_seconds_per_sample(spec_name: str, indices: list[int], schemes: list[str]) -> dict:
    """CPU seconds per sample, single-threaded, in this process, interleaved per sample:
    ours (``cpu`` backend, each band-limit scheme) and abTEM (synchronous dask, FFTW
    1 thread). Per-core throughput that load from other jobs barely changes (unlike
    wall time); returns ``{name: [seconds per sample]}``."""
    import torch

    from napari_interfaces.simulate.database import compute_sample
    from napari_interfaces.simulate.multislice import using_bandlimit_scheme
    from napari_interfaces.simulate.spec import load_spec

    torch.set_num_threads(1)
    spec = load_spec(spec_name).to_dict()
    out: dict[str, list[float]] = {}
    for i in indices:
        for scheme in schemes:
            with using_bandlimit_scheme(scheme):
                c0 = time.process_time()
                compute_sample(spec, SEED, i, device="cpu")
                out.setdefault(f"ours (cpu, band limit on {scheme})", []).append(
                    time.process_time() - c0
                )
        try:
            import abtem

            c0 = time.process_time()
            abtem_samples(spec_name, [i], single_thread=True)
            out.setdefault(f"abTEM {abtem.__version__}", []).append(time.process_time() - c0)
        except ImportError:
            pass
        print(f"  sample {i}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in out.items()),
              flush=True)  # fmt: skip
    return out


def _has_fftw() -> bool:
    try:
        import pyfftw  # noqa: F401

        return True
    except ImportError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--spec", default=SPEC)
    ap.add_argument("--no-abtem", action="store_true")
    ap.add_argument("--no-numpy", action="store_true", help="skip the numpy-backend rows")
    ap.add_argument("--workers", default="1,2", help="worker counts for ours and abTEM (1,2)")
    ap.add_argument("--schemes", default="propagator",
                    help="band-limit schemes for ours: propagator (default), transmission")  # fmt: skip
    ap.add_argument("--abtem-threaded", action="store_true",
                    help="also abTEM in one process with its default dask threads")  # fmt: skip
    ap.add_argument("--cpu-time", action="store_true",
                    help="only CPU seconds per sample, single-threaded, in this process")  # fmt: skip
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    schemes = args.schemes.split(",")
    if args.cpu_time:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[k] = "1"
        os.environ["NAPARI_INTERFACES_FFT_WORKERS"] = "1"
        print(f"CPU seconds per sample, single-threaded ({args.spec}, "
              f"load average {os.getloadavg()[0]:.1f}):")  # fmt: skip
        res = cpu_seconds_per_sample(args.spec, list(range(args.n)), schemes)
        ab = next((v for k, v in res.items() if k.startswith("abTEM")), None)
        print("\n| generator | CPU s per sample (mean) | samples per core-minute | / abTEM |")
        print("|---|---:|---:|---:|")
        for k, v in res.items():
            m = sum(v) / len(v)
            r = f"{sum(ab) / sum(v):.2f}" if ab else "-"
            print(f"| {k} | {m:.1f} | {60 / m:.2f} | {r} |")
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
        return 0
    work = REPO / "benchmarks" / "_work"
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; spec {args.spec}, n = {args.n}; "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    rows = []
    rate: dict = {}
    devices = ["cpu"] + ([] if args.no_numpy else ["numpy"])
    for device in devices:
        for scheme in schemes if device == "cpu" else schemes[:1]:
            for w in workers:
                wall, _ = ours(args.spec, args.n, w, work, device, scheme)
                name = (f"napari-interfaces ({device}, band limit on {scheme}), "
                        f"LocalCluster {w} single-threaded worker{'s' if w > 1 else ''}")  # fmt: skip
                rows.append((name, wall))
                rate[device, scheme, w] = wall
                print(f"  {name}: {wall:.2f} samples/min", flush=True)
    abt = {}
    if not args.no_abtem:
        try:
            import abtem

            if args.abtem_threaded:
                r = 60 * args.n / abtem_samples(args.spec, list(range(args.n)))
                rows.append((f"abTEM {abtem.__version__}, one process (default dask threads)", r))
                print(f"  {rows[-1][0]}: {r:.2f} samples/min", flush=True)
            for w in workers:
                abt[w] = abtem_processes(args.spec, args.n, w)
                name = f"abTEM {abtem.__version__}, {w} single-threaded process{'es' * (w > 1)}"
                rows.append((name, abt[w]))
                print(f"  {name}: {abt[w]:.2f} samples/min", flush=True)
        except ImportError:
            print("abTEM is not installed (pip install abtem): no side-by-side timing\n")
    print("\n| generator | samples/min (wall, incl. start-up) |")
    print("|---|---:|")
    for name, wall in rows:
        print(f"| {name} | {wall:.2f} |")
    print()
    for scheme in schemes:
        for w in workers:
            if w in abt and ("cpu", scheme, w) in rate:
                print(f"- ours (cpu, band limit on {scheme}) / abTEM at {w} core(s): "
                      f"{rate['cpu', scheme, w] / abt[w]:.2f} x (target >= 3)")  # fmt: skip
    print(f"- load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
