"""Simulated HRTEM databases: N samples of image + labels + metadata in zarr.

:func:`generate_database` turns a spec (:mod:`.spec`) into a zarr store laid
out one sample per chunk::

    STORE.zarr/
      image   (N, H, W) float32, chunks (1, H, W)   the simulated micrograph
      labels  (N, H, W) uint8,   chunks (1, H, W)   class per pixel (0 = background)
      meta    (N,)      str,     chunks (1,)        JSON: drawn parameters + sampler info
      done    (N,)      uint8,   chunks (1,)        completion marker (1 = sample complete)
      attrs: spec, seed, n, shape, pixel_size (Å/px), classes, sampler, format

**Deterministic**: sample ``i`` is made from its own generator
``SeedSequence(seed, spawn_key=(i,))`` (:func:`.spec.sample_rng`), so its
content depends on the spec, the seed and ``i`` only: not on ``n``, the
order, the number of workers or interruptions.

**Resumable**: a sample's ``done`` flag is written only after its image,
labels and metadata. Re-running the same command skips the done samples and
(re)computes the others, overwriting any half-written chunk, so a killed run
resumes with nothing duplicated or lost. Asking for a larger ``n`` grows the
store.

**Parallel**: samples are computed on dask. By default a
``distributed.LocalCluster`` with ``workers`` single-threaded worker
processes (``workers × threads_per_worker`` is capped at the cores); pass
``scheduler="tcp://host:8786"`` to use an existing cluster (e.g. one made
with dask-jobqueue on an HPC system, see ``docs/hrtem_segmentation.md``) or
``scheduler="inline"`` to compute in the calling process. Workers only
compute; the calling process writes the store, so workers need no access to
its file system. The runner (back-pressure, cancellation, worker
environment, a refused address failing within seconds) is
:func:`napari_interfaces.core.runner.run_tasks`; read its security note: a
scheduler can run code in the calling process (dask unpickles results), so
connect only to one you trust.

A run that fails before any sample is done removes the store it created.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.runner import check_scheduler_address, run_tasks
from ..core.spec import Spec, param
from .multislice import BANDLIMIT_ENV, using_bandlimit_scheme
from .multislice import bandlimit_scheme as _bandlimit_scheme
from .spec import DatabaseSpec, load_spec, sample_rng

__all__ = [
    "FORMAT",
    "DatabaseFiles",
    "DatabaseParams",
    "DatabaseResult",
    "completed_indices",
    "compute_sample",
    "generate_database",
    "get_sampler",
    "open_database",
    "read_attrs",
    "read_sample",
    "synthetic_sample",
]

FORMAT = "napari-interfaces/hrtem-database"
FORMAT_VERSION = 1

#: ``sampler(params, output, rng) -> (image, labels, info)``
Sampler = Callable[[dict, dict, np.random.Generator], tuple[np.ndarray, np.ndarray, dict]]


# -- samplers ----------------------------------------------------------------
def synthetic_sample(
    params: dict[str, Any], output: dict[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A fast HRTEM-like toy sample (no multislice): for tests and demos.

    Particles are discs (radius ``particle.radius`` Å, ``particle.count`` of
    them) filled with lattice fringes of period ``particle.d_spacing`` Å at a
    random angle, on an amorphous background (smoothed noise of relative
    amplitude ``substrate.contrast``); the image is blurred by
    ``imaging.blur`` Å and shot-noise limited at ``imaging.dose`` e/Å².
    Labels are the discs (1) on background (0).
    """
    from scipy import ndimage

    part = params.get("particle", {})
    sub = params.get("substrate", {})
    img_p = params.get("imaging", {})
    n = int(output["crop"])
    ps = float(output["pixel_size"])
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) * ps
    image = np.zeros((n, n), np.float32)
    labels = np.zeros((n, n), np.uint8)
    count = int(part.get("count", 1))
    radius = float(part.get("radius", 20.0))
    d = float(part.get("d_spacing", 2.35))
    contrast = float(part.get("contrast", 0.3))
    side = n * ps
    for _ in range(count):
        r = radius * float(rng.uniform(0.8, 1.2))
        cy, cx = rng.uniform(0.2 * side, 0.8 * side, size=2)
        theta = float(rng.uniform(0, np.pi))
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        phase = 2 * np.pi / d * (np.cos(theta) * xx + np.sin(theta) * yy)
        image[mask] += contrast * (np.cos(phase[mask]) - 0.5)
        labels[mask] = 1
    bg = ndimage.gaussian_filter(rng.standard_normal((n, n)).astype(np.float32), 1.0 / ps)
    bg *= float(sub.get("contrast", 0.15)) / max(float(bg.std()), 1e-6)
    image += bg
    blur = float(img_p.get("blur", 0.5))
    if blur > 0:
        image = ndimage.gaussian_filter(image, blur / ps)
    intensity = np.clip(1.0 + image, 0.0, None)
    dose = float(img_p.get("dose", 0.0))
    if dose > 0:
        lam = intensity * dose * ps * ps
        intensity = (rng.poisson(lam) / (dose * ps * ps)).astype(np.float32)
    return intensity.astype(np.float32), labels, {"sampler": "synthetic"}


#: Sample parameters a ``multislice`` spec may not set (the output section does).
_MULTISLICE_OWN = {"extent", "pixel_size"}


def _flatten_groups(params: dict[str, Any]) -> dict[str, Any]:
    """``{group: {key: v}}`` -> ``{key: v}`` (one level of grouping is allowed)."""
    from .workflow import sample_parameters

    names = set().union(*sample_parameters().values()) - _MULTISLICE_OWN
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if key in names:
            flat[key] = value
        elif isinstance(value, dict) and all(k in names for k in value):
            for k, v in value.items():
                if k in flat:
                    raise InputError(f"parameters: {k!r} is given twice")
                flat[k] = v
        else:
            bad = (
                key
                if key not in names and not isinstance(value, dict)
                else (f"{key}." + next(k for k in value if k not in names))
            )
            raise InputError(
                f"parameters.{bad}: not a simulator parameter; allowed (optionally grouped "
                f"one level deep): {sorted(names)}"
            )
    return flat


def multislice_sample(
    params: dict[str, Any], output: dict[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One sample made by the HRTEM multislice simulator.

    ``params`` are keyword arguments of
    :func:`napari_interfaces.simulate.workflow.simulate_sample` (optionally
    grouped one level deep, e.g. ``structure:``, ``microscope:``,
    ``detector:``); the field of view is ``crop × pixel_size`` and the image
    is resampled to ``output.pixel_size`` and cropped/padded to ``crop``.
    ``device`` defaults to ``cpu`` (torch's MKL FFTs, else NumPy; one
    single-threaded process per core).
    """
    from .workflow import simulate_sample

    kwargs = _flatten_groups(params)
    n = int(output["crop"])
    ps = float(output["pixel_size"])
    kwargs.setdefault("device", "cpu")
    s = simulate_sample(rng, extent=(n * ps, n * ps), pixel_size=ps, **kwargs)
    image = _fit(np.asarray(s.image, dtype=np.float32), n, mode="edge")
    labels = _fit(np.asarray(s.labels, dtype=np.uint8), n, mode="edge")
    info = {
        "sampler": "multislice",
        "sampling": [float(v) for v in s.sampling],
        "scene": _jsonable(getattr(s.scene, "info", {})),
        "timings": _jsonable(s.timings),
    }
    return image, labels, info


def _fit(a: np.ndarray, n: int, mode: str = "edge") -> np.ndarray:
    """Crop or pad a 2D array to ``(n, n)`` (top-left anchored)."""
    a = a[:n, :n]
    ph, pw = n - a.shape[0], n - a.shape[1]
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)), mode=mode)
    return a


_SAMPLERS: dict[str, Sampler] = {"synthetic": synthetic_sample, "multislice": multislice_sample}


def get_sampler(name: str | Sampler) -> Sampler:
    """The sampler function for a spec's ``sampler`` name (or a callable)."""
    if callable(name):
        return name
    try:
        return _SAMPLERS[name]
    except KeyError:
        raise InputError(f"unknown sampler {name!r}; choose from {sorted(_SAMPLERS)}") from None


def _with_device(params: dict[str, Any], device: str) -> dict[str, Any]:
    """``params`` with the multislice ``device`` set (replacing any in the spec's groups)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in params.items()}
    for v in out.values():
        if isinstance(v, dict):
            v.pop("device", None)
    out["device"] = device
    return out


def _load_spec_checked(spec):
    """:func:`load_spec`, with a YAML nested too deeply as one line naming the file."""
    try:
        return load_spec(spec)
    except RecursionError:
        where = spec if isinstance(spec, (str, Path)) else "spec"
        raise InputError(f"{where}: nested too deeply to be a database spec") from None


def _unknown_distribution(tree: Any, where: str = "parameters") -> str | None:
    """Where a drawn parameter tree still holds a one-key mapping of numbers (an
    unknown distribution such as ``{gauss: [5, 9]}``), or ``None``."""
    if isinstance(tree, dict):
        if len(tree) == 1:
            ((k, v),) = tree.items()
            if isinstance(v, (list, tuple, int, float)) and not isinstance(v, bool):
                return f"{where}: {{{k}: {v!r}}}"
        for k, v in tree.items():
            found = _unknown_distribution(v, f"{where}.{k}")
            if found:
                return found
    return None


def compute_sample(spec_dict: dict, seed: int, index: int, sampler=None, device=None):
    """Compute sample ``index`` (run on a dask worker; pure function of its inputs).

    ``device`` (multislice backend, see :mod:`.backends`) overrides the
    spec's; it is not part of the spec (a store may be resumed on another
    device) but is recorded in the sample's parameters.

    Returns ``(index, image float32, labels uint8, meta dict)``.
    """
    spec = DatabaseSpec.from_dict(spec_dict)
    fn = get_sampler(sampler if sampler is not None else spec.sampler)
    rng = sample_rng(seed, index)
    params = spec.draw(rng)
    if device and spec.sampler == "multislice" and sampler is None:
        params = _with_device(params, device)
    try:
        image, labels, info = fn(params, spec.output, rng)
    except (TypeError, ValueError) as exc:
        found = None if isinstance(exc, InputError) else _unknown_distribution(params)
        if found is None:
            raise
        from .spec import DISTRIBUTIONS

        raise InputError(
            f"{found} is not a value the {spec.sampler} sampler accepts; an unknown "
            f"distribution? (known: {', '.join(DISTRIBUTIONS)})"
        ) from None
    image = np.asarray(image, dtype=np.float32)
    labels = np.asarray(labels).astype(np.uint8)
    n = spec.crop
    if image.shape != (n, n) or labels.shape != (n, n):
        raise ValueError(
            f"sampler returned image {image.shape} / labels {labels.shape}, expected ({n}, {n})"
        )
    meta = {
        "index": int(index),
        "seed": int(seed),
        "parameters": params,
        "info": _jsonable(info),
    }
    return int(index), image, labels, meta


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 64 else f"<array {obj.shape} {obj.dtype}>"
    return obj


# -- store -------------------------------------------------------------------
def _open_or_create(out: Path, spec: DatabaseSpec, seed: int, n: int):
    import zarr

    attrs_new = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "seed": int(seed),
        "n": int(n),
        "shape": [spec.crop, spec.crop],
        "pixel_size": spec.pixel_size,
        "pixel_unit": "Å",
        "classes": list(spec.classes),
        "sampler": spec.sampler,
        # the multislice band-limit scheme (issue 27): a store is resumed only under the
        # scheme that began it, so its samples stay one simulation
        "multislice_bandlimit": _bandlimit_scheme() if spec.sampler == "multislice" else None,
    }
    if out.exists():
        try:
            g = zarr.open_group(str(out), mode="r+")
        except Exception as exc:
            raise InputError(
                f"{out}: exists and is not a zarr store ({exc}); choose another store"
            ) from exc
        old = dict(g.attrs)
        if old.get("format") != FORMAT:
            raise InputError(
                f"{out}: exists and is not a napari-interfaces database; choose another store"
            )
        validate_attrs(out, old)
        same = (
            old.get("spec", {}).get("parameters") == attrs_new["spec"]["parameters"]
            and old.get("spec", {}).get("output") == attrs_new["spec"]["output"]
            and old.get("spec", {}).get("sampler") == attrs_new["spec"]["sampler"]
            and int(old.get("seed", -1)) == int(seed)
        )
        if not same:
            raise InputError(
                f"{out}: exists with a different spec or seed (seed {old.get('seed')}); "
                "resume only with the same spec and seed, or choose another store"
            )
        scheme = attrs_new["multislice_bandlimit"]
        # stores made before the scheme was recorded used the textbook scheme
        old_scheme = old.get("multislice_bandlimit", "transmission")
        if scheme is not None and old_scheme != scheme:
            raise InputError(
                f"{out}: was simulated with the {old_scheme!r} multislice band-limit scheme, "
                f"this run uses {scheme!r}; resume with {BANDLIMIT_ENV}={old_scheme} "
                "or choose another store"
            )
        if n > int(old["n"]):
            for name in ("image", "labels", "meta", "done"):
                arr = g[name]
                arr.resize((n,) + tuple(arr.shape[1:]))
            g.attrs["n"] = int(n)
        return g
    out.parent.mkdir(parents=True, exist_ok=True)
    g = zarr.open_group(str(out), mode="w")
    c = spec.crop
    g.create_array("image", shape=(n, c, c), chunks=(1, c, c), dtype="float32", fill_value=0.0)
    g.create_array("labels", shape=(n, c, c), chunks=(1, c, c), dtype="uint8", fill_value=0)
    g.create_array("meta", shape=(n,), chunks=(1,), dtype=str, fill_value="")
    g.create_array("done", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0)
    attrs_new["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    g.attrs.update(attrs_new)
    return g


def _arrays(g) -> dict[str, Any]:
    """The store's arrays, opened once (each ``g[name]`` re-reads metadata from disk).

    Opened to write every chunk, including one equal to the fill value (a sample
    with no particle in view has all-zero labels): a completed sample's chunks
    must exist, since a missing chunk is how a damaged store shows.
    """
    import zarr

    with zarr.config.set({"array.write_empty_chunks": True}):
        return {name: g[name] for name in ("image", "labels", "meta", "done")}


def _write(arrays: dict[str, Any], index: int, image, labels, meta) -> None:
    arrays["image"][index] = image
    arrays["labels"][index] = labels
    arrays["meta"][index] = json.dumps(meta, sort_keys=True)
    arrays["done"][index] = 1  # last: the completion marker


def open_database(store: str | Path):
    """The store's zarr group (read-only).

    Raises
    ------
    FileNotFoundError, InputError
    """
    import zarr

    store = Path(store)
    if not store.exists():
        raise FileNotFoundError(f"{store}: no such database store")
    try:
        g = zarr.open_group(str(store), mode="r")
    except Exception as exc:
        raise InputError(f"{store}: not a zarr store: {exc}") from exc
    if g.attrs.get("format") != FORMAT:
        raise InputError(
            f"{store}: not a napari-interfaces database (format {g.attrs.get('format')!r})"
        )
    validate_attrs(store, dict(g.attrs))
    for name in ("image", "labels", "meta", "done"):
        try:
            arr = g[name]
        except Exception:  # noqa: BLE001 - zarr raises KeyError or its own errors
            raise InputError(f"{store}: the {name!r} array is missing or damaged") from None
        if name in ("image", "labels") and (
            len(arr.shape) != 3 or arr.shape[0] != g["done"].shape[0]
        ):
            raise InputError(f"{store}: the {name!r} array has shape {arr.shape}")
    return g


def validate_attrs(store: str | Path, attrs: dict[str, Any]) -> dict[str, Any]:
    """Check a store's attributes (tampered or damaged metadata -> one line naming the key)."""

    def bad(key: str, want: str) -> InputError:
        return InputError(f"{store}: attribute {key!r} = {attrs.get(key)!r}: expected {want}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not is_int(attrs.get("n")) or attrs["n"] < 0:
        raise bad("n", "a non-negative integer")
    if not is_int(attrs.get("seed")):
        raise bad("seed", "an integer")
    spec = attrs.get("spec")
    if not isinstance(spec, dict) or not all(
        isinstance(spec.get(k, {}), dict) for k in ("parameters", "output")
    ):
        raise bad("spec", "a mapping with 'parameters' and 'output' mappings")
    shape = attrs.get("shape")
    if shape is not None and not (
        isinstance(shape, list) and len(shape) == 2 and all(is_int(v) and v > 0 for v in shape)
    ):
        raise bad("shape", "two positive integers")
    ps = attrs.get("pixel_size")
    if ps is not None and not (
        isinstance(ps, (int, float)) and not isinstance(ps, bool) and np.isfinite(ps) and ps > 0
    ):
        raise bad("pixel_size", "a positive number")
    classes = attrs.get("classes")
    if classes is not None and not (
        isinstance(classes, list)
        and 2 <= len(classes) <= 255
        and all(isinstance(c, str) for c in classes)
    ):
        raise bad("classes", "a list of 2 to 255 class names")
    return attrs


def _chunk_exists(arr, index: int) -> bool:
    from zarr.core.sync import sync

    key = arr.metadata.encode_chunk_key((int(index),) + (0,) * (len(arr.shape) - 1))
    sp = arr.store_path
    return bool(sync(sp.store.exists(f"{sp.path}/{key}" if sp.path else key)))


def read_arrays(
    g, store: str | Path, index: int, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(image, labels)`` of a completed sample, checked.

    A missing chunk (which zarr would silently read as zeros), a chunk that
    does not decode, non-finite image pixels or a label value outside the
    classes is an :class:`InputError` naming the store and the sample.
    """
    out = []
    for name in ("image", "labels"):
        arr = g[name]
        if not _chunk_exists(arr, index):
            raise InputError(
                f"{store}: sample {index} is marked complete but its {name} chunk is missing"
            )
        try:
            out.append(np.asarray(arr[index]))
        except Exception as exc:  # noqa: BLE001 - codecs raise many kinds
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise InputError(
                f"{store}: sample {index}: {name} chunk is damaged ({reason})"
            ) from None
    image, labels = out
    if not np.all(np.isfinite(image)):
        raise InputError(f"{store}: sample {index}: the image holds NaN or infinite pixels")
    if n_classes is None:
        n_classes = len(g.attrs.get("classes") or ["background", "particle"])
    top = int(labels.max(initial=0))
    if top >= n_classes:
        raise InputError(
            f"{store}: sample {index}: label value {top} is outside the {n_classes} classes"
        )
    return image, labels


def read_attrs(store: str | Path) -> dict[str, Any]:
    """The store's attributes (spec, seed, n, shape, pixel_size, classes, ...)."""
    return dict(open_database(store).attrs)


def completed_indices(store: str | Path) -> list[int]:
    """Indices of the samples whose completion marker is set."""
    g = open_database(store)
    try:
        done = [int(i) for i in np.flatnonzero(np.asarray(g["done"][:]))]
    except Exception as exc:  # noqa: BLE001 - a damaged completion array
        raise InputError(f"{store}: the completion markers cannot be read ({exc})") from None
    for name in ("image", "labels"):
        missing = [i for i in done if not _chunk_exists(g[name], i)]
        if missing:
            raise InputError(
                f"{store}: {len(missing)} of {len(done)} completed samples have no {name} "
                f"chunk (e.g. sample {missing[0]}); the store is damaged: regenerate them"
            )
    return done


def read_sample(store: str | Path, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(image, labels, meta)`` of one sample.

    Raises
    ------
    IndexError
        If the sample is not (yet) complete.
    """
    g = open_database(store)
    if not 0 <= index < g["done"].shape[0] or not int(g["done"][index]):
        raise IndexError(f"{store}: sample {index} is not complete")
    image, labels = read_arrays(g, store, index)
    meta_s = g["meta"][index]
    try:
        meta = json.loads(str(meta_s.item() if hasattr(meta_s, "item") else meta_s))
    except (ValueError, TypeError):
        raise InputError(f"{store}: sample {index}: its metadata is not JSON") from None
    return image, labels, meta


# -- parameters ----------------------------------------------------------------
@dataclass(frozen=True)
class DatabaseParams(Spec):
    """How many samples of a recipe to simulate, and where."""

    n: int | None = param(
        None,
        "number of samples in the store; a larger n grows an existing store",
        lo=1,
        hi=10**9,
        none="recipe",
        label="samples",
    )
    seed: int | None = param(
        None,
        "database seed (sample i depends only on the recipe, the seed and i); overrides the "
        "recipe's",
        lo=0,
        hi=2**63 - 1,
        none="recipe",
        advanced=True,
    )
    scheduler: str | None = param(
        None,
        "dask scheduler address (tcp://host:8786) of an existing cluster; 'inline' computes in "
        "this process; 'local': a new local cluster. A refused address fails within seconds. "
        "Security: a dask scheduler can run code in this process (dask unpickles results): "
        "connect only to a scheduler you started. Workers only compute; this process writes "
        "the store",
        none="local",
        advanced=True,
        gui=False,
    )
    workers: int | None = param(
        None,
        "local worker processes (workers x threads never exceeds the cores)",
        lo=1,
        hi=4096,
        none="all cores",
        advanced=True,
        label="local workers",
    )
    threads_per_worker: int = param(1, "threads per local worker", lo=1, hi=4096, advanced=True)
    device: str | None = param(
        None,
        "multislice backend on the workers: cpu (torch MKL FFTs), numpy, cuda[:N], opencl:N, "
        "auto (default: the recipe's device parameter, else cpu)",
        none="recipe",
        advanced=True,
    )


@dataclass(frozen=True)
class DatabaseFiles(Spec):
    """The recipe and the store of ``simulate database``."""

    spec: str = param(
        None, "recipe YAML file, or the name of a shipped example", positional=True,
        metavar="SPEC", gui=False,
    )  # fmt: skip
    out: Path = param(None, "output zarr store (a folder)", metavar="STORE.zarr", gui=False)
    quiet: bool = param(False, "no progress bar", gui=False)

    def check(self) -> None:
        self.required("spec", "out")


# -- generation ----------------------------------------------------------------
@dataclass
class DatabaseResult:
    """What :func:`generate_database` returns."""

    path: Path
    n: int
    computed: int
    skipped: int
    seconds: float
    workers: int
    scheduler: str

    @property
    def samples_per_minute(self) -> float:
        return 60.0 * self.computed / self.seconds if self.seconds > 0 else 0.0


def generate_database(
    spec: str | Path | dict | DatabaseSpec,
    out: str | Path,
    params: DatabaseParams | None = None,
    *,
    sampler: Sampler | str | None = None,
    progress: Progress | None = None,
    **values: Any,
) -> DatabaseResult:
    """Generate (or resume) a database of ``n`` samples in the zarr store ``out``.

    Parameters
    ----------
    spec : path, YAML text, mapping or DatabaseSpec
        The recipe (see :mod:`.spec`). A bare name loads a shipped example.
    out : path
        zarr store (a folder). Existing stores made with the same recipe and
        seed are resumed (and grown when ``n`` is larger).
    params : DatabaseParams, optional
        Or its fields as keywords:

        - ``n``: number of samples (default: the recipe's ``n``);
        - ``seed``: overrides the recipe's seed;
        - ``scheduler``: ``None``/``"local"``: a new LocalCluster of
          ``workers`` processes; ``"inline"``: compute in this process;
          ``"tcp://..."``: connect to an existing dask scheduler; a
          ``distributed.Client`` (keyword only): use it;
        - ``workers``: local worker processes (default: all cores; ``workers
          × threads_per_worker`` is capped at the number of cores);
        - ``threads_per_worker``;
        - ``device``: multislice backend on the workers (``cpu``, ``numpy``,
          ``cuda``, ...; default: the recipe's ``device`` parameter, else
          ``cpu``). Backends agree to ~1e-5 but not bit for bit, so a
          database is reproducible bit for bit with the same backend.
    sampler : callable or name, optional
        Overrides the recipe's sampler (``sampler(params, output, rng)``);
        must be importable by the workers when not inline.
    progress : Progress, optional
        One step per sample; cancellation stops submitting, cancels the
        pending work and leaves the store resumable.
    """
    client = values.get("scheduler")
    if client is not None and not isinstance(client, str):  # a distributed.Client
        values = {k: v for k, v in values.items() if k != "scheduler"}
    else:
        client = None
    params = DatabaseParams.of(params, **values)
    scheduler = client if client is not None else params.scheduler
    progress = as_progress(progress)
    spec = _load_spec_checked(spec)
    seed = spec.seed if params.seed is None else int(params.seed)
    n = spec.n if params.n is None else int(params.n)
    if n is None or n < 1:
        raise ParameterError("n", "number of samples must be >= 1 (give n or set n in the recipe)")
    get_sampler(sampler if sampler is not None else spec.sampler)  # fail early on a bad name
    if isinstance(scheduler, str) and scheduler not in ("inline", "local"):
        check_scheduler_address(scheduler)  # before the store is created
    out = Path(out)
    created = not out.exists()
    try:
        g = _open_or_create(out, spec, seed, n)
        return _generate(
            g,
            out,
            spec,
            seed,
            n,
            scheduler,
            params.workers,
            params.threads_per_worker,
            sampler,
            progress,
            params.device,
        )
    except BaseException:
        if created and out.exists() and not _any_done(out):
            shutil.rmtree(out, ignore_errors=True)  # never leave an empty store behind
        raise


def _any_done(out: Path) -> bool:
    try:
        return bool(len(completed_indices(out)))
    except Exception:  # a half-created store has nothing done
        return False


def _sample_task(index: int, spec_dict: dict, seed: int, sampler, device, bandlimit=None):
    """:func:`compute_sample` with the index first (the runner's task signature).

    ``bandlimit``: the store's multislice band-limit scheme, which travels with the
    task so that a worker on another machine (whose environment may differ from the
    client's) simulates with the scheme the store records.
    """
    with using_bandlimit_scheme(bandlimit):
        return compute_sample(spec_dict, seed, index, sampler, device)


def _generate(
    g, out, spec, seed, n, scheduler, workers, threads_per_worker, sampler, progress, device
) -> DatabaseResult:
    arrays = _arrays(g)
    done = np.asarray(arrays["done"][:n]).astype(bool)
    todo = [int(i) for i in np.flatnonzero(~done)]
    skipped = n - len(todo)
    progress.start(n, f"simulating {spec.name}")
    if skipped:
        progress.advance(skipped, description=f"simulating {spec.name} (resumed)")
    if not todo:
        return DatabaseResult(out, n, 0, skipped, 0.0, 0, "none")

    def write(result) -> None:
        index, image, labels, meta = result
        _write(arrays, index, image, labels, meta)
        progress.advance()

    info = run_tasks(
        _sample_task,
        todo,
        on_result=write,
        kwargs={
            "spec_dict": spec.to_dict(),
            "seed": seed,
            "sampler": sampler,
            "device": device,
            "bandlimit": g.attrs.get("multislice_bandlimit"),
        },
        scheduler=scheduler,
        workers=workers,
        threads_per_worker=threads_per_worker,
        progress=progress,
    )
    return DatabaseResult(out, n, len(todo), skipped, info.seconds, info.workers, info.scheduler)
