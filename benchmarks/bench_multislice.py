"""Benchmark: structure -> noise-free HRTEM image, ours (NumPy, OpenCL) vs abTEM.

The issue's case: a 5 nm Au particle (~3,900 atoms) on 102.4 x 102.4 x 50 Å
amorphous carbon (~52,500 atoms), 200 kV, 1024² at 0.1 Å, 2 Å slices.

    python benchmarks/bench_multislice.py            # full case (+ abTEM when installed)
    python benchmarks/bench_multislice.py --quick    # 51.2 Å / 512² version

Prints Markdown tables: per backend and stage (warm, best of --repeat),
first-call overhead, frozen-phonon scaling, agreement with abTEM (Pearson r
of the noise-free images, with and without a 20 mrad aperture). abTEM is
optional (``pip install abtem``); it is never imported by the package.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def _scene(quick: bool):
    from napari_interfaces.simulate.structures import build_scene

    t0 = time.perf_counter()
    if quick:
        sc = build_scene(extent=(51.2, 51.2), substrate_thickness=25, particle_diameter=25,
                         orientation=(1, 1, 0), rng=0)  # fmt: skip
    else:
        sc = build_scene(extent=(102.4, 102.4), substrate_thickness=50, particle_diameter=50,
                         orientation=(1, 1, 0), rng=0)  # fmt: skip
    t = time.perf_counter() - t0
    atoms = sc.atoms
    atoms.cell[2, 2] = np.ceil(atoms.cell[2, 2] / 2) * 2  # equal 2 Å slices for both codes
    return sc, atoms, t


def _ours(atoms, device, fp=1, rng=0):
    from napari_interfaces.simulate.ctf import CTF
    from napari_interfaces.simulate.hrtem import simulate_exit_waves

    t0 = time.perf_counter()
    ew = simulate_exit_waves(atoms, 200, 0.1, 2.0, "lobato", frozen_phonons=fp, rng=rng,
                             device=device)  # fmt: skip
    t1 = time.perf_counter()
    img = CTF(200, defocus=50, cs=1e5).image(ew.waves, ew.sampling)
    t2 = time.perf_counter()
    st = dict(ew.timings)
    st["imaging"] = t2 - t1
    st["total"] = t2 - t0
    return img, ew, st


def _abtem(atoms, aperture=None):
    import abtem

    t0 = time.perf_counter()
    pot = abtem.Potential(atoms, sampling=0.1, slice_thickness=2, projection="infinite",
                          parametrization="lobato")  # fmt: skip
    wave = abtem.PlaneWave(energy=200e3).multislice(pot).compute(progress_bar=False)
    t1 = time.perf_counter()
    kw = {} if aperture is None else dict(semiangle_cutoff=aperture)
    img = wave.apply_ctf(defocus=50, Cs=1e5, **kw).intensity().compute(progress_bar=False)
    t2 = time.perf_counter()
    return img.array.T, wave.array.T, {"multislice+potential": t1 - t0, "imaging": t2 - t1,
                                       "total": t2 - t0}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="51.2 Å / 512² case")
    ap.add_argument("--repeat", type=int, default=2, help="warm repetitions (best is kept)")
    ap.add_argument("--no-opencl", action="store_true")
    ap.add_argument("--no-abtem", action="store_true")
    ap.add_argument("--phonons", type=int, nargs="*", default=[1, 2, 4])
    args = ap.parse_args(argv)

    from napari_interfaces.core.opencl import list_devices
    from napari_interfaces.simulate import backends

    print(f"# bench_multislice ({'quick' if args.quick else 'full'} case)\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"- machine: {platform.platform()}, {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}"
    )
    try:
        load = os.getloadavg()
        print(
            f"- load average at start: {load[0]:.1f} (other jobs share the CPUs when > {os.cpu_count()})"
        )
    except OSError:
        pass
    sc, atoms, t_struct = _scene(args.quick)
    n = len(atoms)
    npart = sc.info["n_particle_atoms"]
    print(
        f"- structure: {n} atoms ({npart} Au + {n - npart} C), cell "
        f"{' x '.join(f'{x:.1f}' for x in atoms.cell.lengths())} Å, built in {t_struct:.2f} s"
    )
    print()

    rows = []
    devices = ["numpy", "torch"]
    if not args.no_opencl:
        devs, msg = list_devices()
        devices += [f"opencl:{d.index}" for d in devs]
        if not devs:
            print(f"(OpenCL: {msg})\n")
    results = {}
    for dev in devices:
        t0 = time.perf_counter()
        backends._BACKENDS.clear()
        b = backends.get_backend(dev)
        t_init = time.perf_counter() - t0
        img, ew, first = _ours(atoms, dev)
        best = None
        for _ in range(args.repeat):
            img, ew, st = _ours(atoms, dev)
            if best is None or st["total"] < best["total"]:
                best = st
        results[dev] = img
        if dev == "numpy":
            label = "numpy (scipy.fft)"
        elif dev == "torch":
            label = f"torch (CPU, MKL FFTs, {__import__('torch').get_num_threads()} threads)"
        else:
            label = (
                f"{dev} ({getattr(b, 'device', None) and b.device.name.strip()}, "
                f"FFT {getattr(b, 'fft_mode', '')})"
            )
        rows.append((f"ours, {label}", best, first["total"] + t_init))

    ab = None
    if not args.no_abtem:
        try:
            import abtem  # noqa: F401

            _, _, first = _abtem(atoms)
            best = None
            for _ in range(args.repeat):
                img, wave, st = _abtem(atoms)
                if best is None or st["total"] < best["total"]:
                    best = st
            ab = img
            rows.append(
                (f"abTEM {abtem.__version__} (FFTW, infinite projection)", best, first["total"])
            )
        except ImportError:
            print("abTEM is not installed (pip install abtem): no side-by-side timing\n")

    print(f"## Structure -> noise-free image (s, warm best of {args.repeat})\n")
    print("| code / backend | potential | multislice | imaging | total (warm) | first call |")
    print("|---|---|---|---|---|---|")
    for name, st, first in rows:
        pot = st.get("potential", float("nan"))
        ms = st.get("multislice", st.get("multislice+potential", float("nan")))
        if "multislice+potential" in st:
            pot_s, ms_s = "(in multislice)", f"{ms:.2f} (incl. potential)"
        else:
            pot_s, ms_s = f"{pot:.2f}", f"{ms:.2f}"
        print(
            f"| {name} | {pot_s} | {ms_s} | {st['imaging']:.2f} | {st['total']:.2f} | {first:.2f} |"
        )
    if ab is not None:
        t_ab = rows[-1][1]["total"]
        print()
        for name, st, _ in rows[:-1]:
            print(f"- {name}: {st['total'] / t_ab:.2f} x abTEM's time (target <= 0.33)")
    print()

    if ab is not None:
        print("## Agreement with abTEM (Pearson r of noise-free images)\n")
        print("| comparison | r |")
        print("|---|---|")
        r = np.corrcoef(results["numpy"].ravel(), ab.ravel())[0, 1]
        print(f"| numpy vs abTEM, no aperture | {r:.4f} |")
        from napari_interfaces.simulate.ctf import CTF
        from napari_interfaces.simulate.hrtem import simulate_exit_waves

        ew = simulate_exit_waves(atoms, 200, 0.1, 2.0, "lobato", device="numpy")
        mine = CTF(200, defocus=50, cs=1e5, aperture_mrad=20).image(ew.waves, ew.sampling)
        ref, _, _ = _abtem(atoms, aperture=20)
        r = np.corrcoef(mine.ravel(), ref.ravel())[0, 1]
        print(f"| numpy vs abTEM, 20 mrad aperture | {r:.4f} |")
        ew = simulate_exit_waves(atoms, 200, 0.1, 2.0, "lobato", device="numpy", deposit="abtem")
        compat = CTF(200, defocus=50, cs=1e5, aperture_mrad=20).image(ew.waves, ew.sampling)
        r = np.corrcoef(compat.ravel(), ref.ravel())[0, 1]
        print(
            f"| numpy with deposit='abtem' (abTEM's potential approximation) vs abTEM, 20 mrad | {r:.5f} |"
        )
        compat0 = CTF(200, defocus=50, cs=1e5).image(ew.waves, ew.sampling)
        r = np.corrcoef(compat0.ravel(), ab.ravel())[0, 1]
        print(f"| numpy with deposit='abtem' vs abTEM, no aperture | {r:.5f} |")
        print()
    if len(results) > 1:
        a = results["numpy"]
        for dev, img in results.items():
            if dev != "numpy":
                print(
                    f"- {dev} vs numpy: max relative image difference "
                    f"{np.abs(img - a).max() / np.abs(a).max():.1e}"
                )
        print()

    if args.phonons:
        print("## Frozen-phonon scaling (numpy, structure -> image)\n")
        print("| configurations | total (s) | per configuration (s) |")
        print("|---|---|---|")
        for fp in args.phonons:
            _, _, st = _ours(atoms, "numpy", fp=fp)
            print(f"| {fp} | {st['total']:.2f} | {st['total'] / fp:.2f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
