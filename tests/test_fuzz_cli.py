"""Property tests: random parameters and random bytes never crash or destroy data.

Issue 11: every CLI command and every reader, fed random parameter values or
random bytes, must

- exit with status 0 or 2 (2 = one-line error), never a traceback;
- touch no file outside its output folder (``ws/out``), change no input,
  leave no temporary file behind, and write nothing when it refuses
  (exit status 2);
- finish in bounded time and memory (a watchdog turns a hang or a runaway
  allocation into a test failure instead of a dead machine).

Readers, called directly, must return or raise the project's
:class:`~napari_interfaces.core.errors.InputError` (never another exception).

The runs are in-process (``napari_interfaces.cli.main``), derandomized and
small (a few examples per command, tiny inputs), so the module stays well
under a minute. A command still failing is marked ``xfail(strict=False)``
with its finding in :data:`KNOWN`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import resource
import shutil
import signal
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from napari_interfaces import cli  # noqa: E402
from napari_interfaces.core.errors import InputError  # noqa: E402
from napari_interfaces.core.outputs import TMP_MARK  # noqa: E402

pytestmark = [
    pytest.mark.skipif(
        not hasattr(signal, "setitimer"), reason="the watchdog needs POSIX signals"
    ),
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),
]

FUZZ = settings(
    max_examples=5,
    deadline=None,
    database=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: bounded time
    suppress_health_check=list(HealthCheck),
)
#: Seconds one command may run before the watchdog calls it a hang.
WATCHDOG_S = 30
#: Extra address space one command may take before it counts as a memory bomb.
MEMORY_HEADROOM = 6 << 30

#: Commands still failing a property, with the finding (the lead re-checks these).
KNOWN: dict[str, str] = {}


# --------------------------------------------------------------------- inputs
def _pos_bytes() -> bytes:
    rng = np.random.default_rng(0)
    n = 2000
    rec = np.empty((n, 4), ">f4")
    rec[:, :3] = rng.uniform(0, 6, (n, 3))
    rec[:, 3] = rng.choice([14.0, 28.0, 29.0], n) + rng.normal(0, 0.05, n)
    return rec.tobytes()


RRNG = b"""[Ions]
Number=1
Ion1=Si
[Ranges]
Number=3
Range1=13.8000 14.2000 Vol:0.02003 Si:1 Color:FF0000
Range2=27.8000 28.2000 Vol:0.02003 Si:1 Color:FF0000
Range3=28.8000 29.2000 Vol:0.02003 Si:1 Color:FF0000
"""

XYZ = b"""4
Lattice="8.0 0.0 0.0 0.0 8.0 0.0 0.0 0.0 8.0" Properties=species:S:1:pos:R:3 pbc="T T T"
Au 2.0 2.0 2.0
Au 4.0 4.0 2.0
C 2.0 6.0 5.0
C 6.0 2.0 5.0
"""

SPEC = b"""name: t
seed: 3
sampler: synthetic
output: {pixel_size: 0.5, crop: 32}
parameters:
  particle: {radius: {uniform: [3, 5]}, count: 1}
  imaging: {dose: {loguniform: [100, 1000]}}
"""


def _tif_bytes() -> bytes:
    import tifffile

    buf = io.BytesIO()
    img = np.random.default_rng(1).normal(100, 10, (64, 64)).astype("float32")
    tifffile.imwrite(buf, img)
    return buf.getvalue()


VALID: dict[str, bytes] = {
    "cloud.pos": _pos_bytes(),
    "ranges.rrng": RRNG,
    "image.tif": _tif_bytes(),
    "scene.xyz": XYZ,
    "spec.yaml": SPEC,
    "model.pt": b"not a model",
}


def _workspace() -> Path:
    ws = Path(tempfile.mkdtemp(prefix="fuzz-"))
    (ws / "in").mkdir()
    for name, data in VALID.items():
        (ws / "in" / name).write_bytes(data)
    (ws / "in" / "db.zarr").mkdir()
    (ws / "in" / "db.zarr" / "zarr.json").write_bytes(b"{}")
    return ws


def _snapshot(ws: Path) -> dict[str, tuple]:
    snap = {}
    for p in sorted(ws.rglob("*")):
        rel = p.relative_to(ws).as_posix()
        if p.is_file():
            st_ = p.stat()
            snap[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st_.st_mtime_ns)
        else:
            snap[rel] = ("dir",)
    return snap


# -------------------------------------------------------------------- watchdog
class Hang(BaseException):
    """Raised by the watchdog (a BaseException: ``except Exception`` cannot eat it)."""


@contextlib.contextmanager
def _guarded():
    def on_alarm(signum, frame):
        raise Hang(f"still running after {WATCHDOG_S} s")

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, WATCHDOG_S)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * resource.getpagesize()
        cap = used + MEMORY_HEADROOM
        if hard == resource.RLIM_INFINITY or cap < hard:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (OSError, ValueError):
        pass
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_cli(argv: list[str], ws: Path) -> tuple[int, str]:
    """Run ``napari-interfaces argv`` in ``ws``; check the properties; return (code, stderr)."""
    before = _snapshot(ws)
    err, out = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ws)
    try:
        with _guarded(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # a bug, a hang or a memory bomb: report with the argv
        pytest.fail(f"{argv}:\n{traceback.format_exc()}\n{err.getvalue()[-2000:]}")
    finally:
        os.chdir(cwd)
    stderr = err.getvalue()
    assert code in (0, 2), (argv, code, stderr[-2000:])
    assert "Traceback" not in stderr, (argv, stderr[-2000:])
    if code == 2:
        assert any(": error: " in line for line in stderr.splitlines()), (argv, stderr)
    after = _snapshot(ws)
    for rel, sig in before.items():
        assert after.get(rel) == sig, f"{argv}: input {rel} changed or removed"
    new = sorted(set(after) - set(before))
    outside = [r for r in new if r != "out" and not r.startswith("out/")]
    assert not outside, f"{argv}: wrote outside the output folder: {outside}"
    assert not [r for r in new if TMP_MARK in r], f"{argv}: temporary files left: {new}"
    if code == 2:
        files = [r for r in new if after[r] != ("dir",)]
        assert not files, f"{argv}: refused (exit 2) but wrote {files}"
    return code, stderr


# ----------------------------------------------------------- parameter values
#: Values a careless or hostile user types: zero, negative, tiny, huge, not finite, text.
BAD = ["0", "-1", "-3", "1e-5", "1.5", "nan", "inf", "-inf", "1e300", "1000000000000", "abc", ""]
NUMBER = st.one_of(
    st.sampled_from(BAD),
    st.integers(1, 4).map(str),
    st.floats(0.1, 4.0).map(lambda x: f"{x:.3g}"),
)
TEXT = st.sampled_from(["", "abc", "-", "1", "cpu", "auto", "numpy", "cuda:7", "opencl:99"])

#: Output paths by command (everything a command writes goes under ws/out).
OUT = {
    "apt synth": "out/synth",
    "apt voxelize": "out/vox",
    "apt segment": "out/seg",
    "apt clusters": "out/clusters",
    "simulate structure": "out/scene.xyz",
    "simulate image": "out/image.tif",
    "simulate database": "out/db.zarr",
    "train": "out/model.pt",
    "segment": "out/labels",
    "cluster": "out/labels.tif",
    "cluster-apply": "out/applied",
    "demo": "out/demo",
}
#: Path-valued options other than --out: where they point.
PATH_OPTIONS = {
    "--ranges": "in/ranges.rrng",
    "--labels": "out/labels.tif",
    "--exit-wave": "out/exit.npy",
    "--particles": "out/particles.tif",
    "--weights": "in/model.pt",
    "--model": "in/model.pt",
    "--data": "in/db.zarr",
}
#: Positional inputs by command.
INPUTS = {
    "apt info": ["in/cloud.pos"],
    "apt voxelize": ["in/cloud.pos"],
    "apt segment": ["in/cloud.pos"],
    "apt clusters": ["in/cloud.pos", "--ranges", "in/ranges.rrng", "--solutes", "Si"],
    "simulate image": ["in/scene.xyz"],
    "simulate database": ["in/spec.yaml"],
    "segment": ["in/image.tif"],
    "cluster": ["in/image.tif"],
    "cluster-apply": ["in/model.pt", "in/image.tif"],
}
#: Options never fuzzed: a network address, a GUI, or a choice that needs
#: downloaded weights for a slow network pass.
SKIP_OPTIONS = {"--scheduler", "--gui", "--help", "--version"}
#: Commands whose numeric options only get bad values (valid ones run for minutes).
BAD_ONLY = {"train", "evaluate", "demo"}


def _leaf_parsers(parser: argparse.ArgumentParser, prefix=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(prefix), parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaf_parsers(sub, (*prefix, name))


COMMANDS = dict(_leaf_parsers(cli.build_parser()))


def _spec_kind(action: argparse.Action):
    """The type a spec-generated option declares (argparse itself keeps the text)."""
    p = getattr(action, "spec_param", None)
    if p is None:
        return None
    return p.item if p.kind is tuple else p.kind


def _option_strategy(command: str, action: argparse.Action):
    """Strategy for the argv fragment of one option (a list of strings)."""
    opt = action.option_strings[-1]
    if action.nargs == 0:
        return st.just([opt])
    if opt in PATH_OPTIONS:
        return st.sampled_from([[opt, PATH_OPTIONS[opt]], [opt, "in/missing.bin"], [opt, "in"]])
    if action.choices:
        value = st.sampled_from([*map(str, action.choices), "bogus"])
    elif action.type in (int, float) or _spec_kind(action) in (int, float):
        value = st.sampled_from(BAD) if command in BAD_ONLY else NUMBER
    else:
        value = TEXT
    if command == "demo" and opt == "--only":
        value = st.sampled_from(["", "nonsense", ",", " , ", "apt,nonsense"])
    n = action.nargs if isinstance(action.nargs, int) else 1
    return st.lists(value, min_size=n, max_size=n).map(lambda vs: [opt, *vs])


def _argv_strategy(command: str):
    parser = COMMANDS[command]
    options = [
        a
        for a in parser._actions
        if a.option_strings
        and not set(a.option_strings) & SKIP_OPTIONS
        and a.option_strings[-1] != "--out"
    ]
    if not options:
        fragments = st.just([])
    else:
        fragments = st.lists(
            st.sampled_from(options).flatmap(lambda a: _option_strategy(command, a)),
            max_size=4,
        )
    base = [*command.split(), *INPUTS.get(command, [])]
    if command in OUT:
        base += ["--out", OUT[command]]
    if command == "apt segment":
        # hed's network pass and the local dask cluster are tested in test_apt_*;
        # here in-process, to keep the property test fast
        base += ["--method", "iso", "--scheduler", "inline"]
    if command == "simulate database":
        base += ["--scheduler", "inline", "--quiet"]
    if command == "demo":
        base += ["--only", "nonsense"]  # the full demo takes minutes: tests/test_demo.py
    return fragments.map(lambda frs: base + [tok for fr in frs for tok in fr])


def _command_params():
    for command in COMMANDS:
        marks = (
            [pytest.mark.xfail(reason=KNOWN[command], strict=False)] if command in KNOWN else []
        )
        yield pytest.param(command, marks=marks, id=command.replace(" ", "-"))


@pytest.fixture(autouse=True)
def _small_limits(monkeypatch):
    # a careless parameter must be refused by a size check, not by the machine
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_BYTES", str(512 << 20))
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_PIXELS", str(1 << 24))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.mark.parametrize("command", list(_command_params()))
def test_cli_random_parameters(command):
    @FUZZ
    @given(argv=_argv_strategy(command))
    def check(argv):
        ws = _workspace()
        try:
            run_cli(argv, ws)
        finally:
            shutil.rmtree(ws, ignore_errors=True)

    check()


# ---------------------------------------------------------------- random bytes
def _mutations(valid: bytes):
    """Random bytes, and the valid file truncated, overwritten or extended."""
    n = len(valid)
    return st.one_of(
        st.binary(max_size=512),
        st.integers(0, n).map(lambda k: valid[:k]),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=16)).map(
            lambda t: valid[: t[0]] + t[1] + valid[t[0] + len(t[1]) :]
        ),
        st.binary(min_size=1, max_size=64).map(lambda b: valid + b),
    )


#: (command, input file replaced by random bytes, argv)
BYTES_CASES = {
    "apt info": ("cloud.pos", ["apt", "info", "in/cloud.pos", "--ranges", "in/ranges.rrng"]),
    "apt info ranges": ("ranges.rrng", ["apt", "info", "in/cloud.pos", "--ranges", "in/ranges.rrng"]),
    "apt voxelize": (
        "cloud.pos",
        ["apt", "voxelize", "in/cloud.pos", "--ranges", "in/ranges.rrng", "--out", "out/vox"],
    ),
    "apt segment": (
        "cloud.pos",
        ["apt", "segment", "in/cloud.pos", "--ranges", "in/ranges.rrng", "--method", "iso",
         "--scheduler", "inline", "--out", "out/seg"],
    ),
    "apt clusters": (
        "cloud.pos",
        ["apt", "clusters", "in/cloud.pos", "--ranges", "in/ranges.rrng", "--solutes", "Si",
         "--out", "out/clusters"],
    ),
    "simulate image": ("scene.xyz", ["simulate", "image", "in/scene.xyz", "--out", "out/i.tif"]),
    "simulate database": (
        "spec.yaml",
        ["simulate", "database", "in/spec.yaml", "--n", "1", "--out", "out/db.zarr",
         "--scheduler", "inline", "--quiet"],
    ),
    "segment": ("image.tif", ["segment", "in/image.tif", "--out", "out/labels", "--quiet"]),
    "segment weights": (
        "model.pt",
        ["segment", "in/image.tif", "--model", "in/model.pt", "--out", "out/labels", "--quiet"],
    ),
    "cluster": ("image.tif", ["cluster", "in/image.tif", "--out", "out/labels.tif"]),
    "cluster weights": (
        "model.pt",
        ["cluster", "in/image.tif", "--features", "learned", "--weights", "in/model.pt",
         "--out", "out/labels.tif"],
    ),
    "cluster-apply": ("model.pt", ["cluster-apply", "in/model.pt", "in/image.tif", "--out",
                                   "out/applied"]),
}  # fmt: skip
KNOWN_BYTES: dict[str, str] = {}


def _bytes_params():
    for case in BYTES_CASES:
        marks = []
        if case in KNOWN_BYTES:
            marks = [pytest.mark.xfail(reason=KNOWN_BYTES[case], strict=False)]
        yield pytest.param(case, marks=marks, id=case.replace(" ", "-"))


@pytest.mark.parametrize("case", list(_bytes_params()))
def test_cli_random_input_bytes(case):
    name, argv = BYTES_CASES[case]
    if argv[0] not in COMMANDS and " ".join(argv[:2]) not in COMMANDS:
        pytest.skip(f"command {argv[:2]} not installed")

    @FUZZ
    @given(data=_mutations(VALID[name]))
    def check(data):
        ws = _workspace()
        try:
            (ws / "in" / name).write_bytes(data)
            run_cli(argv, ws)
        finally:
            shutil.rmtree(ws, ignore_errors=True)

    check()


# --------------------------------------------------------------------- readers
def _readers():
    from napari_interfaces.io import apt_labels, apt_pointcloud, apt_volume, micrograph, ranges

    pos = VALID["cloud.pos"]
    return {
        "read_pos": (apt_pointcloud.read_pos, ".pos", pos),
        "read_epos": (apt_pointcloud.read_epos, ".epos", pos),
        "read_apt": (apt_pointcloud.read_apt, ".apt", pos),
        "read_ato": (apt_pointcloud.read_ato, ".ato", pos),
        "read_csv": (apt_pointcloud.read_csv, ".csv", b"x,y,z,m\n1,2,3,28\n4,5,6,14\n"),
        "read_pointcloud": (apt_pointcloud.read_pointcloud, ".pos", pos),
        "read_labelled_pointcloud": (apt_labels.read_labelled_pointcloud, ".npz", b"PK\x03\x04"),
        "read_volume_tiff": (apt_volume.read_volume_tiff, ".tif", VALID["image.tif"]),
        "read_micrograph": (micrograph.read_micrograph, ".tif", VALID["image.tif"]),
        "read_micrograph_png": (micrograph.read_micrograph, ".png", b"\x89PNG\r\n\x1a\n"),
        "read_rrng": (ranges.read_rrng, ".rrng", RRNG),
        "read_rng": (ranges.read_rng, ".rng", RRNG),
        "read_env": (ranges.read_env, ".env", RRNG),
        "read_ranges": (ranges.read_ranges, ".rrng", RRNG),
        "load_spec": (_load_spec, ".yaml", SPEC),
        "hook_apt_data": (_hook("apt_data"), ".pos", pos),
        "hook_micrograph": (_hook("micrograph"), ".tif", VALID["image.tif"]),
    }


def _hook(module: str):
    """The npe2 reader hook: ``get_reader(path)`` then the reader it returns."""

    def read(path):
        import importlib

        hook = importlib.import_module(f"napari_interfaces._hooks.{module}")
        reader = hook.get_reader(str(path))
        return None if reader is None else reader(str(path))

    return read


def _load_spec(path):
    from napari_interfaces.simulate.spec import load_spec

    return load_spec(Path(path))


READERS = [
    "read_pos", "read_epos", "read_apt", "read_ato", "read_csv", "read_pointcloud",
    "read_labelled_pointcloud", "read_volume_tiff", "read_micrograph", "read_micrograph_png",
    "read_rrng", "read_rng", "read_env", "read_ranges", "load_spec",
    "hook_apt_data", "hook_micrograph",
]  # fmt: skip
KNOWN_READERS: dict[str, str] = {}


def _reader_params():
    for name in READERS:
        marks = []
        if name in KNOWN_READERS:
            marks = [pytest.mark.xfail(reason=KNOWN_READERS[name], strict=False)]
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("reader", list(_reader_params()))
def test_reader_random_bytes(reader):
    func, suffix, valid = _readers()[reader]

    @FUZZ
    @given(data=_mutations(valid))
    def check(data):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"input{suffix}"
            path.write_bytes(data)
            try:
                with _guarded():
                    result = func(path)
                    del result
            except InputError as exc:
                assert str(exc).strip() and "\n" not in str(exc).strip(), repr(exc)
            except BaseException:
                pytest.fail(f"{reader}({data[:64]!r}...):\n{traceback.format_exc()}")
            assert path.read_bytes() == data, "the reader changed its input"

    check()


def test_watchdog_catches_a_hang():
    # the guard itself: a hang becomes a test failure, not a stuck CI run
    import time

    global WATCHDOG_S
    old, WATCHDOG_S = WATCHDOG_S, 0.2
    try:
        with pytest.raises(Hang), _guarded():
            time.sleep(5)
    finally:
        WATCHDOG_S = old


# ------------------------------------------------------- tampered metadata (issue 22)
#: Values a tampered metadata file holds instead of the real one.
HOSTILE = [0, -1, -0.57, 3000, 1e308, "abc", "../../victim", None, [], {}, [200000, 2], True]


@pytest.fixture(scope="module")
def metadata_template(tmp_path_factory):
    """A small real database, model and series reference to tamper with (built once)."""
    import tifffile

    from napari_interfaces.segment.models import save_model
    from napari_interfaces.segment.unet import UNet, UNetConfig

    base = tmp_path_factory.mktemp("meta-template")
    inp = base / "in"
    inp.mkdir()
    (inp / "spec.yaml").write_bytes(SPEC)
    rng = np.random.default_rng(1)
    (inp / "series").mkdir()
    for i in range(2):
        img = rng.normal(100, 10, (96, 96)).astype("float32")
        img[:, :48] += 30 * np.sin(np.arange(96)[:, None] * 1.3)
        tifffile.imwrite(inp / "series" / f"s{i}.tif", img)
    tifffile.imwrite(inp / "image.tif", img)
    save_model(UNet(UNetConfig(width=4, blocks=(1, 1))), inp / "m.pt", {"pixel_size": 0.5})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert (
            cli.main(
                [
                    "simulate",
                    "database",
                    str(inp / "spec.yaml"),
                    "--n",
                    "3",
                    "--out",
                    str(inp / "db.zarr"),
                    "--scheduler",
                    "inline",
                    "--quiet",
                ]
            )
            == 0
        )
        assert cli.main(["cluster", str(inp / "image.tif"), "--apply-to", str(inp / "series"),
                         "--out", str(base / "ser")]) == 0  # fmt: skip
    for name in ("reference.json", "reference.npz"):
        shutil.copy(base / "ser" / name, inp / name)
    return base


def _tampered_ws(template: Path) -> Path:
    ws = Path(tempfile.mkdtemp(prefix="fuzz-meta-"))
    shutil.copytree(template / "in", ws / "in")
    return ws


def _paths(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))


def _set(tree, path, value):
    import copy

    tree = copy.deepcopy(tree)
    node = tree
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return tree


#: (file to tamper, the part of its JSON that is metadata, argv)
META_CASES = {
    "zarr attrs": ("db.zarr/zarr.json", "attributes",
                   ["evaluate", "--data", "in/db.zarr", "--model", "in/m.pt"]),
    "model json": ("m.json", None,
                   ["segment", "in/image.tif", "--model", "in/m.pt", "--out", "out/l", "--quiet"]),
    "reference json": ("reference.json", None,
                       ["cluster", "--reference", "in/reference.json", "--apply-to", "in/series",
                        "--out", "out/ser"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(META_CASES), ids=lambda c: c.replace(" ", "-"))
def test_cli_tampered_metadata(case, metadata_template):
    import json

    rel, part, argv = META_CASES[case]
    doc = json.loads((metadata_template / "in" / rel).read_text())
    meta = doc[part] if part else doc
    paths = sorted(_paths(meta), key=str)

    @FUZZ
    @given(path=st.sampled_from(paths), value=st.sampled_from(HOSTILE))
    def check(path, value):
        ws = _tampered_ws(metadata_template)
        try:
            new = _set(meta, path, value)
            full = {**doc, part: new} if part else new
            (ws / "in" / rel).write_text(json.dumps(full))
            run_cli(argv, ws)
        finally:
            shutil.rmtree(ws, ignore_errors=True)

    check()


def _npz_mutations():
    """(array name, replacement): wrong shapes, wrong types, a huge declared header."""
    return st.tuples(
        st.sampled_from(["centroids", "ids", "radius", "transform_mean", "nonexistent"]),
        st.sampled_from(["empty", "wrong-shape", "strings", "huge-header", "drop"]),
    )


def _write_npz(path: Path, name: str, how: str) -> None:
    import zipfile

    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if how == "drop":
        arrays.pop(name, None)
    elif how == "empty":
        arrays[name] = np.zeros((0,))
    elif how == "wrong-shape":
        arrays[name] = np.ones((3, 5, 7))
    elif how == "strings":
        arrays[name] = np.array(["a", "b"])
    np.savez_compressed(path, **arrays)
    if how == "huge-header":  # a member whose header declares 8 GB, stored in a few bytes
        hdr = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            hdr, {"descr": "<f8", "fortran_order": False, "shape": (1 << 30,)}
        )
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{name}_big.npy", b"\x93NUMPY\x01\x00" + hdr.getvalue()[8:] + b"\0" * 64)


def test_cli_tampered_reference_npz(metadata_template):
    argv = ["cluster", "--reference", "in/reference.json", "--apply-to", "in/series",
            "--out", "out/ser"]  # fmt: skip

    @FUZZ
    @given(mutation=_npz_mutations())
    def check(mutation):
        ws = _tampered_ws(metadata_template)
        try:
            _write_npz(ws / "in" / "reference.npz", *mutation)
            run_cli(argv, ws)
        finally:
            shutil.rmtree(ws, ignore_errors=True)

    check()


# ------------------------------------------------ symlinks at output and temp paths
def test_cli_never_writes_through_planted_symlinks(metadata_template):
    """A link at the output, at the old predictable checkpoint temp name and at a
    guessed temporary name: the files they point at stay untouched."""
    from napari_interfaces.core.outputs import _host

    ws = _tampered_ws(metadata_template)
    try:
        victim = ws / "in" / "victim.bin"
        victim.write_bytes(b"precious")
        out = ws / "out"
        out.mkdir()
        (out / "labels.tif").symlink_to(victim)
        (out / "model.pt.ckpt.tmp").symlink_to(victim)
        tag = f"cluster-{_host()}-{os.getpid()}"
        for i in range(3):
            (out / f".labels.tif.{TMP_MARK}-{tag}-guess{i:03d}.tif").symlink_to(victim)
        planted = sorted(p.name for p in out.iterdir())
        err, cwd = io.StringIO(), os.getcwd()
        os.chdir(ws)
        try:
            with _guarded(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
                code = cli.main(["cluster", "in/image.tif", "--out", "out/labels.tif",
                                 "--overwrite"])  # fmt: skip
        finally:
            os.chdir(cwd)
        err = err.getvalue()
        assert code == 0, err
        assert victim.read_bytes() == b"precious"
        assert not (out / "labels.tif").is_symlink()  # replaced, not written through
        left = sorted(p.name for p in out.iterdir())
        assert set(planted) - {"labels.tif"} <= set(left)  # others' files are left alone
    finally:
        shutil.rmtree(ws, ignore_errors=True)


# --------------------------------------------- two commands on one output folder
def test_two_commands_at_once_on_one_output_folder(tmp_path):
    """Each run cleans up only its own temporaries: both finish, every listed file exists."""
    import subprocess
    import sys

    (tmp_path / "a.pos").write_bytes(VALID["cloud.pos"])
    (tmp_path / "a.rrng").write_bytes(RRNG)
    (tmp_path / "b.pos").write_bytes(VALID["cloud.pos"][::-1][::-1])
    (tmp_path / "b.rrng").write_bytes(RRNG)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "napari_interfaces",
                "apt",
                "voxelize",
                str(tmp_path / f"{s}.pos"),
                "--counts",
                "--out",
                str(out),
                "--voxel",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for s in ("a", "b")
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-1000:]
    names = sorted(p.name for p in out.iterdir())
    for s in ("a", "b"):
        for part in ("Si_at_pct", "Si_counts"):
            assert f"{s}_{part}.tif" in names, names
    assert not [n for n in names if TMP_MARK in n], names
