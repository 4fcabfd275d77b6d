"""Range files: ``.rrng`` (read/write), ``.rng`` and ``.env`` (read).

``.rrng`` (INI-like)::

    [Ions]
    Number=2
    Ion1=Cr
    Ion2=O
    [Ranges]
    Number=2
    Range1=51.699 54.243 Vol:0.01201 Cr:1 Color:FF33CC
    Range2=41.869 43.181 Vol:0.06966 Cr:1 O:2 Color:00FF00

Variants accepted: fields after ``lo hi`` in any order; ``Vol`` and
``Color`` optional; lower-/upper-case keys and section names; comma
decimal marks (``51,699``); repeated identical ranges (kept once); a range
given by ``Name:CrO2`` only (elements parsed from the name); element keys
in any case (``cr:1``); ``#``/``;`` comments; CRLF line ends.

``.rng`` (Oak Ridge)::

    <n_species> <n_ranges>
    Si
    Si 0.8 0.8 0.8          # name + RGB in 0..1
    ...
    ----------- Si Cr O     # column header
    . 13.87 14.24 1 0 0     # lo hi counts per column
    ...

An optional ``polyatomic extension`` block after it names molecular ions
for ranges with the same ``lo hi``.

``.env`` (GPM Rouen): rows ``Formula lo hi ...`` between a line starting
``# Definition of`` and one starting ``# Atom probe definition`` (or every
such row when those markers are absent).

A mass ``m`` belongs to a range when ``lo <= m < hi``. Malformed lines and
unknown elements raise :class:`~napari_interfaces.io.apt_errors.AptFormatError`
naming the file and line.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from ..apt.elements import formula, is_element, parse_formula
from ..apt.ranging import Range, RangeTable
from .apt_errors import AptFormatError

__all__ = [
    "RANGE_SUFFIXES",
    "read_ranges",
    "read_rrng",
    "read_rng",
    "read_env",
    "write_rrng",
    "find_range_file",
]

RANGE_SUFFIXES = (".rrng", ".rng", ".env")


def _text_lines(path: Path) -> list[str]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise AptFormatError(path, "range file is empty", line=1)
    if b"\x00" in raw:
        raise AptFormatError(path, "binary data in a text range file", offset=raw.index(b"\x00"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _last_line(lines: list[str]) -> int:
    return max((i for i, ln in enumerate(lines, 1) if ln.strip()), default=1)


def _num(tok: str) -> float:
    v = float(tok.replace(",", "."))
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"non-finite number {tok!r}")
    return v


def _element_key(key: str) -> str:
    return key[:1].upper() + key[1:].lower()


def _color(tok: str) -> str | None:
    tok = tok.strip().lstrip("#")
    if re.fullmatch(r"[0-9a-fA-F]{6}", tok):
        return "#" + tok.lower()
    return None


def _dedupe(path: Path, ranges: list[tuple[int, Range]]) -> list[Range]:
    seen: dict[tuple, int] = {}
    out = []
    for line, r in ranges:
        key = (r.lo, r.hi, tuple(sorted(r.composition.items())))
        if key in seen:
            warnings.warn(
                f"{path} line {line}: duplicate of the range at line {seen[key]} "
                f"({r.label()}); kept once",
                UserWarning,
                stacklevel=3,
            )
            continue
        seen[key] = line
        out.append(r)
    return out


def _make(
    path: Path,
    lineno: int,
    lo: float,
    hi: float,
    comp: dict[str, int],
    name: str | None,
    color: str | None,
    vol: float | None,
) -> Range:
    try:
        if not comp:
            if not name:
                raise ValueError("range has neither element counts nor a Name")
            comp = parse_formula(re.sub(r"[+\-]+$", "", name))
        return Range(lo, hi, name or formula(comp), comp, color, vol)
    except ValueError as exc:
        raise AptFormatError(path, str(exc), line=lineno) from None


# --------------------------------------------------------------------------- .rrng
def read_rrng(path: str | os.PathLike) -> RangeTable:
    """Read an ``.rrng`` file (see module docs for the accepted variants)."""
    path = Path(path)
    lines = _text_lines(path)
    section = None
    found_ranges = False
    declared: int | None = None
    declared_line = 0
    ranges: list[tuple[int, Range]] = []
    for lineno, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        m = re.fullmatch(r"\[(\w+)\]", s)
        if m:
            section = m.group(1).lower()
            found_ranges |= section == "ranges"
            continue
        if "=" not in s:
            raise AptFormatError(path, f"expected key=value, got {s!r}", line=lineno)
        key, _, value = (t.strip() for t in s.partition("="))
        if section == "ranges" and key.lower() == "number":
            try:
                declared = int(value)
            except ValueError:
                raise AptFormatError(path, f"bad Number={value!r}", line=lineno) from None
            declared_line = lineno
            continue
        if section != "ranges":
            continue
        if not re.fullmatch(r"range\d+", key.lower()):
            raise AptFormatError(path, f"unexpected key {key!r} in [Ranges]", line=lineno)
        toks = value.split()
        bare = [t for t in toks if ":" not in t]
        fields = [t for t in toks if ":" in t]
        if len(bare) != 2 or not fields:
            raise AptFormatError(
                path, f"range needs 'lo hi' and key:value fields, got {value!r}", line=lineno
            )
        try:
            lo, hi = _num(bare[0]), _num(bare[1])
        except ValueError:
            raise AptFormatError(path, f"bad range bounds in {value!r}", line=lineno) from None
        comp: dict[str, int] = {}
        name = color = None
        vol = None
        for tok in fields:
            k, _, v = tok.partition(":")
            kl = k.lower()
            try:
                if kl == "vol":
                    vol = _num(v)
                elif kl == "color" or kl == "colour":
                    color = _color(v)
                elif kl == "name":
                    name = v
                else:
                    el = _element_key(k)
                    if not is_element(el):
                        raise AptFormatError(path, f"unknown element {k!r}", line=lineno)
                    n = int(round(_num(v)))
                    if n > 0:
                        comp[el] = comp.get(el, 0) + n
            except AptFormatError:
                raise
            except ValueError:
                raise AptFormatError(path, f"bad value in field {tok!r}", line=lineno) from None
        ranges.append((lineno, _make(path, lineno, lo, hi, comp, name, color, vol)))
    if not found_ranges:
        raise AptFormatError(
            path, "no [Ranges] section (not an .rrng file)", line=_last_line(lines)
        )
    if declared is not None and declared != len(ranges):
        raise AptFormatError(
            path,
            f"[Ranges] declares Number={declared} but {len(ranges)} range lines follow "
            "(truncated file?)",
            line=declared_line,
        )
    if not ranges:
        raise AptFormatError(path, "no ranges in [Ranges]", line=_last_line(lines))
    return RangeTable(_dedupe(path, ranges), source=str(path))


def write_rrng(path: str | os.PathLike, ranges: RangeTable) -> Path:
    """Write ``ranges`` as ``.rrng`` (ions listed by species name)."""
    path = Path(path)
    out = ["[Ions]", f"Number={len(ranges.species)}"]
    out += [f"Ion{i + 1}={sp}" for i, sp in enumerate(ranges.species)]
    out += ["[Ranges]", f"Number={len(ranges.ranges)}"]
    for i, r in enumerate(ranges.ranges, 1):
        fields = [f"{r.lo:.4f}", f"{r.hi:.4f}"]
        if r.volume is not None:
            fields.append(f"Vol:{r.volume:.5f}")
        if r.ion != formula(r.composition):
            fields.append(f"Name:{r.ion}")
        fields += [f"{el}:{n}" for el, n in r.composition.items()]
        if r.color:
            fields.append(f"Color:{r.color.lstrip('#').upper()}")
        out.append(f"Range{i}=" + " ".join(fields))
    path.write_text("\n".join(out) + "\n")
    return path


# --------------------------------------------------------------------------- .rng
def read_rng(path: str | os.PathLike) -> RangeTable:
    """Read an Oak Ridge ``.rng`` file (with its optional polyatomic extension)."""
    path = Path(path)
    lines = _text_lines(path)
    rows = [(i + 1, ln.strip()) for i, ln in enumerate(lines)]
    pos = 0

    def next_row():
        nonlocal pos
        while pos < len(rows) and not rows[pos][1]:
            pos += 1
        if pos >= len(rows):
            raise AptFormatError(path, "unexpected end of file", line=_last_line(lines))
        r = rows[pos]
        pos += 1
        return r

    def block(expect_elements: bool):
        ln, s = next_row()
        toks = s.split()
        try:
            n_sp, n_rng = int(toks[0]), int(toks[1])
            if n_sp <= 0 or n_rng < 0 or len(toks) != 2:
                raise ValueError
        except (ValueError, IndexError):
            raise AptFormatError(
                path, f"expected '<n_species> <n_ranges>', got {s!r}", line=ln
            ) from None
        names, colors = [], {}
        for _ in range(n_sp):
            ln, s = next_row()
            name = s.split()[0]
            if expect_elements and not is_element(name):
                raise AptFormatError(path, f"unknown element {name!r}", line=ln)
            ln, s = next_row()
            t = s.split()
            try:
                rgb = [_num(x) for x in t[1:4]]
                if len(rgb) != 3 or t[0] != name:
                    raise ValueError
                colors[name] = "#" + "".join(
                    f"{int(round(255 * min(1, max(0, c)))):02x}" for c in rgb
                )
            except ValueError:
                raise AptFormatError(
                    path, f"expected '{name} r g b', got {s!r}", line=ln
                ) from None
            names.append(name)
        ln, s = next_row()
        if not s.startswith("-"):
            raise AptFormatError(
                path, f"expected the '----- names' column header, got {s!r}", line=ln
            )
        cols = s.lstrip("-").split()
        if sorted(cols) != sorted(names):
            raise AptFormatError(path, f"column header {cols} does not list {names}", line=ln)
        out = []
        for _ in range(n_rng):
            ln, s = next_row()
            t = s.split()
            try:
                if t[0] != "." or len(t) != 3 + len(cols):
                    raise ValueError
                lo, hi = _num(t[1]), _num(t[2])
                counts = [int(round(_num(x))) for x in t[3:]]
            except (ValueError, IndexError):
                raise AptFormatError(
                    path, f"expected '. lo hi' and {len(cols)} counts, got {s!r}", line=ln
                ) from None
            out.append((ln, lo, hi, {c: n for c, n in zip(cols, counts) if n > 0}, colors))
        return out

    main = block(True)
    names: dict[tuple[float, float], tuple[str, str | None]] = {}
    rest = [r for r in rows[pos:] if r[1]]
    if rest and "polyatomic" in rest[0][1].lower():
        while rows[pos][1].lower().find("polyatomic") < 0:
            pos += 1
        pos += 1
        for _ln, lo, hi, comp, colors in block(False):
            if len(comp) == 1:
                (nm,) = comp
                names[(lo, hi)] = (nm, colors.get(nm))
    ranges = []
    for ln, lo, hi, comp, colors in main:
        nm, col = names.get((lo, hi), (None, None))
        if col is None and len(comp) == 1:
            col = colors.get(next(iter(comp)))
        if nm is not None:
            try:
                named = parse_formula(nm)
            except ValueError:
                named = None  # a free-form name: keep it with the counts of the main block
            if named is not None and named != comp:
                raise AptFormatError(
                    path,
                    f"polyatomic name {nm!r} disagrees with the counts {comp} of range {lo}-{hi}",
                    line=ln,
                )
        ranges.append((ln, _make(path, ln, lo, hi, comp, nm, col, None)))
    return RangeTable(_dedupe(path, ranges), source=str(path))


# --------------------------------------------------------------------------- .env
def read_env(path: str | os.PathLike) -> RangeTable:
    """Read the range definitions of a GPM/Rouen ``.env`` file."""
    path = Path(path)
    lines = _text_lines(path)
    start = next(
        (i for i, ln in enumerate(lines) if ln.strip().startswith("# Definition of")), None
    )
    stop = next(
        (
            i
            for i, ln in enumerate(lines)
            if i > (start or -1) and ln.strip().startswith("# Atom probe definition")
        ),
        len(lines),
    )
    ranges = []
    for i in range((start or -1) + 1, stop):
        s = lines[i].strip()
        if not s or s.startswith("#"):
            continue
        t = s.split()
        if len(t) < 3:
            if start is None:
                continue
            raise AptFormatError(path, f"expected 'Formula lo hi', got {s!r}", line=i + 1)
        try:
            lo, hi = _num(t[1]), _num(t[2])
        except ValueError:
            if start is None:
                continue
            raise AptFormatError(path, f"bad range bounds in {s!r}", line=i + 1) from None
        try:
            comp = parse_formula(t[0])
        except ValueError as exc:
            raise AptFormatError(path, str(exc), line=i + 1) from None
        ranges.append((i + 1, _make(path, i + 1, lo, hi, comp, t[0], None, None)))
    if not ranges:
        raise AptFormatError(path, "no range definitions found", line=_last_line(lines))
    return RangeTable(_dedupe(path, ranges), source=str(path))


# --------------------------------------------------------------------------- dispatch
def read_ranges(path: str | os.PathLike) -> RangeTable:
    """Read ``.rrng``, ``.rng`` or ``.env`` by suffix (case-insensitive)."""
    path = Path(path)
    suffix = path.suffix.lower()
    readers = {".rrng": read_rrng, ".rng": read_rng, ".env": read_env}
    if suffix not in readers:
        raise AptFormatError(
            path, f"unknown range file suffix {suffix!r} (known: {', '.join(RANGE_SUFFIXES)})"
        )
    return readers[suffix](path)


def find_range_file(pointcloud_path: str | os.PathLike) -> Path | None:
    """A range file beside a point cloud with the same stem (any suffix case), or None.

    Preference: ``.rrng``, then ``.rng``, then ``.env``.
    """
    p = Path(pointcloud_path)
    try:
        siblings = {c.name.lower(): c for c in p.parent.iterdir() if c.is_file()}
    except OSError:
        return None
    for suffix in RANGE_SUFFIXES:
        hit = siblings.get((p.stem + suffix).lower())
        if hit is not None:
            return hit
    return None
