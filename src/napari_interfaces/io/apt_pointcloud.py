"""Readers and writers of APT point clouds: ``.pos``, ``.epos``, ``.apt``, ``.ato``, csv/txt.

Formats
-------
``.pos``
    No header; 16 bytes per ion: big-endian float32 x, y, z (nm), m/n (Da).
``.epos``
    No header; 44 bytes per ion, big-endian: float32 x, y, z, m/n, TOF (ns),
    V_DC (V), V_pulse (V), det_x, det_y (mm), int32 pulses since the last
    event, int32 ions per pulse. Extra columns may be all zero.
``.apt`` (AP Suite 6 / IVAS 4)
    Little-endian. 540-byte file header (``"APT\\0"``, int32 header size,
    int32 version, 256 UTF-16 characters file name, FILETIME, int64 ion
    count), then sections. Each section header: ``"SEC\\0"``, int32 header
    size, int32 header version, 32 UTF-16 characters section name, int32
    section version, uint32 relation type, uint32 record type, uint32 data
    type (1 int, 2 uint, 3 float), int32 bits per value, int32 record size
    (bytes), 16 UTF-16 characters unit, int64 record count, int64 byte count.
    The next section starts at start + header size + byte count. Sections
    are read by name (``Position``, ``Mass``, others as extra columns when
    one value per ion); unknown ones are skipped.
``.ato`` (version 3, LAWATAP/Rouen)
    8-byte header (uint32, uint32 version = 3), then 56 bytes per ion:
    14 little-endian float32, of which x, y, z are in Å (converted to nm)
    and column 3 is m/n (Da).
``.csv`` / ``.txt``
    Columns x, y, z (nm), m (Da); comma, semicolon, tab or space separated;
    an optional header line naming the columns (``x y z m`` or ``Da``/``mass``).

All readers raise :class:`~napari_interfaces.io.apt_errors.AptFormatError`
(a ``ValueError``) naming the file and the byte offset or line for empty or
truncated files, wrong magic/version, sizes that are not a multiple of the
record size, and NaN or infinite values. They never return partial data.

Examples
--------
>>> from napari_interfaces.io.apt_pointcloud import read_pointcloud  # doctest: +SKIP
>>> cloud = read_pointcloud("Si.pos")  # doctest: +SKIP
>>> cloud.n_ions  # doctest: +SKIP
945211
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..aptmodel.pointcloud import CHUNK_IONS, PointCloud
from .apt_checks import MAX_COORD_NM, MAX_MASS_DA, _check_cloud, _check_plausible  # noqa: F401
from .apt_errors import AptFormatError

__all__ = [
    "POINTCLOUD_SUFFIXES",
    "read_pointcloud",
    "read_pos",
    "read_epos",
    "read_apt",
    "read_ato",
    "read_csv",
    "write_pointcloud",
    "write_pos",
    "write_epos",
    "write_apt",
    "write_ato",
    "write_csv",
]

POINTCLOUD_SUFFIXES = (".pos", ".epos", ".apt", ".ato", ".csv", ".txt")

_EPOS_DTYPE = np.dtype(
    [
        ("x", ">f4"),
        ("y", ">f4"),
        ("z", ">f4"),
        ("m", ">f4"),
        ("tof", ">f4"),
        ("v_dc", ">f4"),
        ("v_pulse", ">f4"),
        ("det_x", ">f4"),
        ("det_y", ">f4"),
        ("pulses_since_last", ">i4"),
        ("ions_per_pulse", ">i4"),
    ]
)
EPOS_COLUMNS = _EPOS_DTYPE.names[4:]


# --------------------------------------------------------------------------- helpers
def _file_size(path: Path) -> int:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise AptFormatError(path, "is a directory, not a point cloud file")
    from ..core.limits import check_regular_file

    return check_regular_file(path)  # a FIFO or a device would hang or never end


def _check_records(path: Path, size: int, header: int, record: int) -> int:
    """Number of records; errors for empty files and partial records."""
    if size == 0:
        raise AptFormatError(path, "file is empty", offset=0)
    body = size - header
    if body < 0:
        raise AptFormatError(
            path, f"file ({size} bytes) is shorter than its {header}-byte header", offset=size
        )
    if body % record:
        n = body // record
        raise AptFormatError(
            path,
            f"file size {size} is not {header} + a multiple of the {record}-byte record "
            f"({body % record} trailing bytes: truncated or not this format)",
            offset=header + n * record,
        )
    if body == 0:
        raise AptFormatError(path, "file holds no ions", offset=header)
    return body // record


def _check_finite(
    path: Path, cloud: PointCloud, header: int, record: int, coord_scale: float = 1.0
) -> None:
    """Raise for the first NaN/inf or implausible x, y, z or m (chunked), naming its byte offset.

    Assumes x, y, z, m are the first four 4-byte values of each record.
    """
    from ..aptmodel._numba import kernels

    k = kernels()

    def one(start: int, stop: int):
        """(first bad ion or -1, column, chunk bounds lo, hi, mass lo, hi)."""
        rec = cloud.native_records(start, stop)
        if k is not None:
            lo = np.full(3, np.inf, dtype=np.float32)
            hi = np.full(3, -np.inf, dtype=np.float32)
            i = int(k["finite"](rec))
            if i < 0:
                k["bounds"](rec, lo, hi)
                m = rec[:, 3]
                return -1, 0, lo, hi, float(m.min()), float(m.max())
        else:
            ok = np.isfinite(rec).all(axis=1)
            if ok.all():
                m = rec[:, 3]
                return (
                    -1,
                    0,
                    rec[:, :3].min(axis=0),
                    rec[:, :3].max(axis=0),
                    float(m.min()),
                    float(m.max()),
                )
            i = int(np.flatnonzero(~ok)[0])
        col = int(np.flatnonzero(~np.isfinite(rec[i]))[0])
        return start + i, col, None, None, None, None

    parts = cloud.map_chunks(one)
    for ion, col, *_ in parts:
        if ion >= 0:
            raise AptFormatError(
                path,
                f"non-finite value (NaN or inf) for ion {ion}",
                offset=header + ion * record + 4 * col,
            )
    lo = np.min([p[2] for p in parts], axis=0)
    hi = np.max([p[3] for p in parts], axis=0)
    mlo = min(p[4] for p in parts)
    mhi = max(p[5] for p in parts)
    _check_plausible(
        path,
        cloud,
        lo,
        hi,
        mlo,
        mhi,
        lambda ion, col: {"offset": header + ion * record + 4 * col},
        coord_scale,
    )
    # the scan also gave the bounds: cache them (one pass less later)
    if coord_scale == 1.0:
        cloud.metadata["_bounds"] = (cloud.n_ions, lo, hi)


# --------------------------------------------------------------------------- .pos / .epos
def read_pos(path: str | os.PathLike, validate: bool = True) -> PointCloud:
    """Read a ``.pos`` file as a memory-mapped :class:`PointCloud`.

    Parameters
    ----------
    path : path-like
    validate : bool
        Scan for NaN/inf (chunked; about 1 GB/s).
    """
    path = Path(path)
    n = _check_records(path, _file_size(path), 0, 16)
    raw = np.memmap(path, dtype=">f4", mode="r", shape=(n, 4))
    cloud = PointCloud(
        raw[:, :3], raw[:, 3], source=str(path), metadata={"format": "pos"}, records=raw
    )
    if validate:
        _check_finite(path, cloud, 0, 16)
    return cloud


def read_epos(path: str | os.PathLike, validate: bool = True) -> PointCloud:
    """Read an ``.epos`` file (memory-mapped); extra columns go to ``columns``."""
    path = Path(path)
    n = _check_records(path, _file_size(path), 0, 44)
    rec = np.memmap(path, dtype=_EPOS_DTYPE, mode="r", shape=(n,))
    raw = rec.view(">f4").reshape(n, 11)  # float view of the whole record
    cols = {name: rec[name] for name in EPOS_COLUMNS}
    cloud = PointCloud(
        raw[:, :3],
        raw[:, 3],
        cols,
        source=str(path),
        metadata={"format": "epos"},
        records=raw[:, :4],
    )
    if validate:
        _check_finite(path, cloud, 0, 44)
        _check_epos_columns(path, rec)
    return cloud


#: Largest plausible ions per pulse in ``.epos`` (multi-hits are a handful of ions).
MAX_IONS_PER_PULSE = 1000


def _check_epos_columns(path: Path, rec: np.ndarray) -> None:
    """``ions_per_pulse`` in [0, MAX] and ``pulses_since_last`` >= 0 (chunked).

    Other bytes read as ``.epos`` (e.g. a renamed ``.pos`` whose size
    happens to be a multiple of 44) put float bits into these integers.
    """
    for a in range(0, len(rec), CHUNK_IONS):
        blk = rec[a : a + CHUNK_IONS]
        ipp = blk["ions_per_pulse"]
        psl = blk["pulses_since_last"]
        bad = np.flatnonzero((ipp < 0) | (ipp > MAX_IONS_PER_PULSE) | (psl < 0))
        if len(bad):
            i = a + int(bad[0])
            raise AptFormatError(
                path,
                f"ion {i}: ions_per_pulse {int(rec['ions_per_pulse'][i])} / pulses_since_last "
                f"{int(rec['pulses_since_last'][i])} are not plausible .epos values "
                "(a .pos file or another format renamed .epos?)",
                offset=i * 44 + 36,
            )


def write_pos(path: str | os.PathLike, cloud: PointCloud) -> Path:
    """Write ``cloud`` as ``.pos`` (big-endian float32; exact round trip)."""
    path = Path(path)
    with open(path, "wb") as fh:
        for a, b in cloud.chunks():
            block = np.empty((b - a, 4), dtype=">f4")
            block[:, :3] = cloud.xyz[a:b]
            block[:, 3] = cloud.mass[a:b]
            fh.write(block.tobytes())
    return path


def write_epos(path: str | os.PathLike, cloud: PointCloud) -> Path:
    """Write ``cloud`` as ``.epos``; missing extra columns are written as zeros."""
    path = Path(path)
    with open(path, "wb") as fh:
        for a, b in cloud.chunks():
            block = np.zeros(b - a, dtype=_EPOS_DTYPE)
            for i, ax in enumerate("xyz"):
                block[ax] = cloud.xyz[a:b, i]
            block["m"] = cloud.mass[a:b]
            for name in EPOS_COLUMNS:
                if name in cloud.columns:
                    block[name] = cloud.columns[name][a:b]
            fh.write(block.tobytes())
    return path


# --------------------------------------------------------------------------- .apt
_APT_FILE_HEADER = struct.Struct("<4sii512sqq")  # 540 bytes
_APT_SEC_HEADER = struct.Struct("<4sii64siIIIii32sqq")  # 148 bytes
_APT_DTYPES = {1: "i", 2: "u", 3: "f"}


def _utf16(raw: bytes) -> str:
    return raw.decode("utf-16-le", errors="replace").split("\x00", 1)[0]


def read_apt(path: str | os.PathLike, validate: bool = True) -> PointCloud:
    """Read an AP Suite 6 ``.apt`` file (sections memory-mapped, read by name).

    ``Position`` (nm) and ``Mass`` (Da) are required; every other section
    holding one fixed-size value per ion becomes an extra column named after
    the section (``Multiplicity``, ``tof``, ...). Unknown layouts are skipped.
    """
    path = Path(path)
    size = _file_size(path)
    if size == 0:
        raise AptFormatError(path, "file is empty", offset=0)
    with open(path, "rb") as fh:
        head = fh.read(_APT_FILE_HEADER.size)
        if len(head) < 4 or head[:4] != b"APT\x00":
            raise AptFormatError(path, f"not an AP Suite .apt file (magic {head[:4]!r})", offset=0)
        if len(head) < _APT_FILE_HEADER.size:
            raise AptFormatError(path, "truncated file header", offset=len(head))
        _, hsize, hversion, fname, ftime, n_ions = _APT_FILE_HEADER.unpack(head)
        if hsize < _APT_FILE_HEADER.size or hsize > size:
            raise AptFormatError(path, f"bad file header size {hsize}", offset=4)
        if hversion not in (2, 3):
            raise AptFormatError(path, f"unsupported .apt header version {hversion}", offset=8)
        if n_ions <= 0:
            raise AptFormatError(path, f"bad ion count {n_ions}", offset=532)
        sections: dict[str, np.ndarray] = {}
        units: dict[str, str] = {}
        data_offsets: dict[str, int] = {}
        seen: set[str] = set()
        offset = hsize
        while offset < size:
            fh.seek(offset)
            sh = fh.read(_APT_SEC_HEADER.size)
            if len(sh) < _APT_SEC_HEADER.size:
                raise AptFormatError(path, "truncated section header", offset=offset)
            (
                sig,
                shsize,
                _shv,
                name,
                _sver,
                _rel,
                rtype,
                dtype_code,
                bits,
                rsize,
                unit,
                rcount,
                bcount,
            ) = _APT_SEC_HEADER.unpack(sh)
            if sig != b"SEC\x00":
                raise AptFormatError(path, f"bad section magic {sig!r}", offset=offset)
            if shsize < _APT_SEC_HEADER.size or bcount < 0:
                raise AptFormatError(
                    path, f"bad section header (size {shsize}, bytes {bcount})", offset=offset
                )
            data_start = offset + shsize
            nxt = data_start + bcount
            if nxt > size:
                raise AptFormatError(
                    path,
                    f"section {_utf16(name)!r} needs {bcount} bytes, file is truncated",
                    offset=data_start,
                )
            sname = _utf16(name)
            if sname in sections or (sname in ("Position", "Mass") and sname in seen):
                raise AptFormatError(
                    path, f"duplicate section {sname!r} (which one is meant?)", offset=offset
                )
            seen.add(sname)
            kind = _APT_DTYPES.get(dtype_code)
            if (
                rtype == 1
                and kind is not None
                and bits in (8, 16, 32, 64)
                and rsize > 0
                and rsize % (bits // 8) == 0
                and rcount == n_ions
                and bcount == rcount * rsize
            ):
                ncomp = rsize // (bits // 8)
                dt = np.dtype(f"<{kind}{bits // 8}")
                arr = np.memmap(path, dtype=dt, mode="r", offset=data_start, shape=(rcount, ncomp))
                sections[sname] = arr if ncomp > 1 else arr[:, 0]
                units[sname] = _utf16(unit)
                data_offsets[sname] = data_start
            elif sname in ("Position", "Mass"):
                raise AptFormatError(
                    path,
                    f"section {sname!r} has an unexpected layout (type {dtype_code}, "
                    f"{bits} bits, record {rsize} B, {rcount} records for {n_ions} ions)",
                    offset=offset,
                )
            offset = nxt
    for required in ("Position", "Mass"):
        if required not in sections:
            raise AptFormatError(path, f"no {required!r} section", offset=size)
    xyz, mass = sections.pop("Position"), sections.pop("Mass")
    if xyz.ndim != 2 or xyz.shape[1] != 3 or xyz.dtype.kind != "f":
        raise AptFormatError(
            path, "Position section is not 3 floats per ion", offset=data_offsets["Position"]
        )
    if mass.ndim != 1 or mass.dtype.kind != "f":
        width = mass.shape[1] if mass.ndim == 2 else 1
        raise AptFormatError(
            path,
            f"Mass section has {width} components per ion, expected one float",
            offset=data_offsets["Mass"],
        )
    if validate:
        for sname, arr, width in (("Position", xyz, 12), ("Mass", mass, 4)):
            for start in range(0, len(arr), CHUNK_IONS):
                ok = np.isfinite(arr[start : start + CHUNK_IONS])
                if not ok.all():
                    bad = np.argwhere(~ok)[0]
                    i = start + int(bad[0])
                    col = int(bad[1]) if ok.ndim == 2 else 0
                    raise AptFormatError(
                        path,
                        f"non-finite value (NaN or inf) for ion {i} in section {sname!r}",
                        offset=data_offsets[sname] + i * width + 4 * col,
                    )
    cols = {k: v for k, v in sections.items() if v.ndim == 1}
    cloud = PointCloud(
        xyz,
        mass,
        cols,
        source=str(path),
        metadata={"format": "apt", "file_name": _utf16(fname), "units": units},
    )
    if validate:
        _check_cloud(
            path,
            cloud,
            lambda i, col: {
                "offset": data_offsets["Position"] + i * 12 + 4 * col
                if col < 3
                else data_offsets["Mass"] + i * 4
            },
        )
    return cloud


def _sec_header(
    name: str, dtype_code: int, bits: int, rsize: int, unit: str, n: int, extra: bytes = b""
) -> bytes:
    return (
        _APT_SEC_HEADER.pack(
            b"SEC\x00",
            _APT_SEC_HEADER.size + len(extra),
            2,
            name.encode("utf-16-le").ljust(64, b"\0"),
            1,
            1,
            1,
            dtype_code,
            bits,
            rsize,
            unit.encode("utf-16-le").ljust(32, b"\0"),
            n,
            n * rsize,
        )
        + extra
    )


def write_apt(path: str | os.PathLike, cloud: PointCloud) -> Path:
    """Write a minimal AP Suite ``.apt`` file (Position, Mass, and float/int columns).

    Meant for exchange and tests; AP Suite writes many more sections.
    """
    path = Path(path)
    n = cloud.n_ions
    with open(path, "wb") as fh:
        fh.write(
            _APT_FILE_HEADER.pack(
                b"APT\x00", 540, 2, path.name.encode("utf-16-le")[:510].ljust(512, b"\0"), 0, n
            )
        )
        b = cloud.bounds() if n else {ax: (0.0, 0.0) for ax in "xyz"}
        extra = struct.pack("<6f", *(v for ax in "xyz" for v in b[ax]))  # Position bounds
        fh.write(_sec_header("Position", 3, 32, 12, "nm", n, extra))
        fh.write(np.ascontiguousarray(cloud.xyz, dtype="<f4").tobytes())
        fh.write(_sec_header("Mass", 3, 32, 4, "Da", n))
        fh.write(np.ascontiguousarray(cloud.mass, dtype="<f4").tobytes())
        for name, col in cloud.columns.items():
            col = np.asarray(col)
            code = {"f": 3, "i": 1, "u": 2}.get(col.dtype.kind)
            if code is None or col.ndim != 1:
                continue
            dt = np.dtype(f"<{col.dtype.kind}{col.dtype.itemsize}")
            fh.write(_sec_header(name, code, dt.itemsize * 8, dt.itemsize, "", n))
            fh.write(col.astype(dt).tobytes())
    return path


# --------------------------------------------------------------------------- .ato
def read_ato(path: str | os.PathLike, validate: bool = True) -> PointCloud:
    """Read an ``.ato`` version 3 file (positions Å → nm; copies x, y, z)."""
    path = Path(path)
    size = _file_size(path)
    if size == 0:
        raise AptFormatError(path, "file is empty", offset=0)
    if size < 8:
        raise AptFormatError(path, "truncated 8-byte header", offset=size)
    with open(path, "rb") as fh:
        _, version = struct.unpack("<II", fh.read(8))
    if version != 3:
        raise AptFormatError(path, f"unsupported .ato version {version} (only 3)", offset=4)
    n = _check_records(path, size, 8, 56)
    raw = np.memmap(path, dtype="<f4", mode="r", offset=8, shape=(n, 14))
    if validate:
        _check_finite(path, PointCloud(raw[:, :3], raw[:, 3]), 8, 56, coord_scale=0.1)
    xyz = (raw[:, :3] * np.float32(0.1)).astype(np.float32)
    names = (
        "cluster_id",
        "pulse",
        "v_dc",
        "tof",
        "det_x",
        "det_y",
        "v_pulse",
        "v_virtual",
        "fourier_1",
        "fourier_2",
    )
    cols = {nm: raw[:, 4 + i] for i, nm in enumerate(names)}
    return PointCloud(xyz, raw[:, 3], cols, source=str(path), metadata={"format": "ato"})


def write_ato(path: str | os.PathLike, cloud: PointCloud) -> Path:
    """Write an ``.ato`` v3 file (x, y, z, m; other columns zero)."""
    path = Path(path)
    rec = np.zeros((cloud.n_ions, 14), dtype="<f4")
    rec[:, :3] = np.asarray(cloud.xyz, dtype=np.float64) * 10.0
    rec[:, 3] = cloud.mass
    with open(path, "wb") as fh:
        fh.write(struct.pack("<II", 0, 3))
        fh.write(rec.tobytes())
    return path


# --------------------------------------------------------------------------- csv / txt
def _split(line: str) -> list[str]:
    for sep in (",", ";", "\t"):
        if sep in line:
            return [t.strip() for t in line.split(sep)]
    return line.split()


#: Memory per byte of a text point cloud while parsing (Python lists of floats).
_TEXT_BYTES_PER_BYTE = 10


def read_csv(path: str | os.PathLike) -> PointCloud:
    """Read a text point cloud with x, y, z (nm) and m (Da) columns.

    A first line that is not numeric is a header; columns named ``x``,
    ``y``, ``z`` and ``m``/``mass``/``da``/``m/n``/``mz`` are picked by
    name, otherwise the first four columns are used. ``#`` starts a comment.
    """
    from ..core.limits import check_bytes

    path = Path(path)
    size = _file_size(path)
    if size == 0:
        raise AptFormatError(path, "file is empty", line=1)
    # text is parsed into Python floats: about 10 bytes of memory per byte of file
    check_bytes(size * _TEXT_BYTES_PER_BYTE, f"{path.name}: text point cloud of {size:,} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AptFormatError(path, f"not a text file ({exc.reason})", offset=exc.start) from None
    cols = [0, 1, 2, 3]
    rows: list[list[float]] = []
    linenos: list[int] = []
    first = True
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        toks = _split(s)
        if first:
            first = False
            try:
                [float(t.replace(",", ".")) for t in toks]
            except ValueError:
                names = [t.strip().strip('"').lower() for t in toks]
                try:
                    cols = [names.index(a) for a in "xyz"]
                except ValueError:
                    raise AptFormatError(
                        path, f"header {line!r} lacks x, y, z columns", line=lineno
                    ) from None
                for cand in ("m", "mass", "da", "m/n", "mz", "m/z", "mass_to_charge"):
                    if cand in names:
                        cols.append(names.index(cand))
                        break
                else:
                    raise AptFormatError(
                        path, f"header {line!r} lacks a mass column (m)", line=lineno
                    )
                continue
        try:
            vals = [float(toks[c]) for c in cols]
        except (ValueError, IndexError):
            raise AptFormatError(
                path, f"expected numbers in columns {cols}, got {line!r}", line=lineno
            ) from None
        if not all(np.isfinite(vals)):
            raise AptFormatError(path, f"non-finite value in {line!r}", line=lineno)
        rows.append(vals)
        linenos.append(lineno)
    if not rows:
        raise AptFormatError(path, "no ions found", line=1)
    arr = np.asarray(rows, dtype=np.float32)
    cloud = PointCloud(
        np.ascontiguousarray(arr[:, :3]),
        np.ascontiguousarray(arr[:, 3]),
        source=str(path),
        metadata={"format": "csv"},
    )
    _check_cloud(path, cloud, lambda i, col: {"line": linenos[i]})
    return cloud


def write_csv(path: str | os.PathLike, cloud: PointCloud) -> Path:
    """Write ``x,y,z,m`` (+ extra columns) as CSV with a header line."""
    path = Path(path)
    names = ["x", "y", "z", "m", *cloud.columns]
    data = np.column_stack(
        [
            np.asarray(cloud.xyz, np.float64),
            np.asarray(cloud.mass, np.float64),
            *[np.asarray(v, np.float64) for v in cloud.columns.values()],
        ]
    )
    np.savetxt(path, data, delimiter=",", header=",".join(names), comments="", fmt="%.9g")
    return path


# --------------------------------------------------------------------------- dispatch
_READERS = {
    ".pos": read_pos,
    ".epos": read_epos,
    ".apt": read_apt,
    ".ato": read_ato,
    ".csv": read_csv,
    ".txt": read_csv,
}
_WRITERS = {
    ".pos": write_pos,
    ".epos": write_epos,
    ".apt": write_apt,
    ".ato": write_ato,
    ".csv": write_csv,
    ".txt": write_csv,
}


def read_pointcloud(path: str | os.PathLike) -> PointCloud:
    """Read any supported point cloud by its suffix (see :data:`POINTCLOUD_SUFFIXES`).

    ``.npz`` labelled clouds (:mod:`napari_interfaces.io.apt_labels`) are read too.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        from .apt_labels import read_labelled_pointcloud

        return read_labelled_pointcloud(path)
    reader = _READERS.get(suffix)
    if reader is None:
        raise AptFormatError(
            path,
            f"unknown point cloud suffix {suffix!r} (known: {', '.join(POINTCLOUD_SUFFIXES)})",
        )
    return reader(path)


def write_pointcloud(path: str | os.PathLike, cloud: PointCloud) -> Path:
    """Write ``cloud`` in the format given by the suffix of ``path``."""
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ValueError(f"{path}: cannot write suffix {path.suffix!r}")
    return writer(path, cloud)
