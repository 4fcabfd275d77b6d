"""Database throughput: samples per minute with 1 and 2 dask workers, beside abTEM.

    python benchmarks/bench_database.py [--n 12] [--no-abtem]

Generates ``--n`` samples of the shipped ``hrtem_default`` spec (256² at
0.2 Å/px, 300 kV, 0.2 Å multislice sampling, 20-80 Å a-C, one Au particle)
into fresh stores under ``benchmarks/_work/`` with a LocalCluster of 1 and of
2 single-threaded workers (times include the cluster start), then makes the
same samples (same structures, same imaging parameters) with abTEM in this
process: abTEM potential + multislice of the full scene, of the
particle-only scene (for the labels), CTF with the same defocus / Cs /
astigmatism / focal-spread envelope, Poisson noise. abTEM is optional (``pip
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


def ours(n: int, workers: int, work: Path) -> tuple[float, float]:
    from napari_interfaces.simulate.database import generate_database

    out = work / f"bench_db_w{workers}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    r = generate_database(SPEC, out, n=n, seed=9000, workers=workers)
    wall = time.perf_counter() - t0
    return 60 * n / wall, r.samples_per_minute


def abtem_samples(n: int) -> float:
    import abtem
    import numpy as np

    from napari_interfaces.simulate.spec import load_spec, sample_rng
    from napari_interfaces.simulate.structures import build_scene

    abtem.config.set({"device": "cpu", "fft": "fftw" if _has_fftw() else "numpy"})
    spec = load_spec(SPEC)
    side = spec.crop * spec.pixel_size
    t0 = time.perf_counter()
    for i in range(n):
        rng = sample_rng(9000, i)
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
            rng=rng,
        )
        waves = []
        for atoms in (scene.atoms, scene.particles):
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
        lam = img * det["dose"] * mic["sampling"] ** 2
        _noisy = rng.poisson(np.clip(lam, 0, None))
        _labels = np.angle(part) > np.pi / 12
    return 60 * n / (time.perf_counter() - t0)


def _has_fftw() -> bool:
    try:
        import pyfftw  # noqa: F401

        return True
    except ImportError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--no-abtem", action="store_true")
    args = ap.parse_args(argv)
    work = REPO / "benchmarks" / "_work"
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; spec {SPEC}, n = {args.n}\n"
    )
    rows = []
    for w in (1, 2):
        wall, steady = ours(args.n, w, work)
        rows.append(
            (
                f"napari-interfaces, LocalCluster {w} worker{'s' if w > 1 else ''} x 1 thread",
                wall,
                steady,
            )
        )
    eff = rows[1][1] / (2 * rows[0][1]) if rows[0][1] else float("nan")
    abt = None
    if not args.no_abtem:
        try:
            import abtem

            abt = abtem_samples(args.n)
            rows.append(
                (f"abTEM {abtem.__version__}, this process (its own dask threads)", abt, abt)
            )
        except ImportError:
            print("abTEM is not installed (pip install abtem): no side-by-side timing\n")
    print("| generator | samples/min (wall, incl. cluster start) |")
    print("|---|---:|")
    for name, wall, _ in rows:
        print(f"| {name} | {wall:.1f} |")
    print(f"\nscaling efficiency 1 -> 2 workers: {eff:.0%}")
    if abt:
        print(
            f"napari-interfaces (2 workers) / abTEM: {rows[1][2] / abt:.1f}x;"
            f" 1 worker / abTEM: {rows[0][2] / abt:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
