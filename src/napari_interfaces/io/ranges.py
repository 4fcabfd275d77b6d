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

A mass ``m`` belongs to a range when ``lo <= m < hi``.

Files from other labs (read as AP Suite reads them)
---------------------------------------------------
- An **unknown or placeholder species** (AP Suite ``Name:unknown60`` with
  no element counts, ``X23``/``Hyd`` in ``.env``, an ``unknown`` or ``All``
  column in ``.rng``) becomes an *unranged-but-known* ion: a
  :class:`~napari_interfaces.aptmodel.ranging.Range` with an empty composition.
  Its ions are counted and listed, never added to an element composition,
  and it yields to every range with elements where they overlap (so a
  catch-all ``All`` 0-400 Da only takes otherwise unranged masses).
- Text before the first section (``mq1 mq2 volume element color``) and
  malformed range lines (too short, unreadable bounds, ``lo >= hi``, an
  unknown element key) are skipped.
- Identical ranges are kept once; a later range on the **same mass
  interval** with another composition is dropped (the first line wins, as
  in AP Suite's first-match ranging).
- An ion name reused with two compositions is counted by composition
  (the second gets the name of its formula).

Everything skipped, merged or reinterpreted is reported in **one**
:class:`~napari_interfaces.aptmodel.ranging.RangeFileWarning` per file (a
:class:`~napari_interfaces.aptmodel.ranging.RangeOverlapWarning` when ranges
overlap), naming the line numbers; the text is kept in ``RangeTable.notes``.
A file is refused with an
:class:`~napari_interfaces.io.apt_errors.AptFormatError` naming the file and
line only when no range can be read from it, when it is truncated
(``Number=`` larger than the lines present), when it is not a regular file
(a FIFO, a device such as ``/dev/zero`` behind a symlink) or when it is
larger than :data:`MAX_RANGE_FILE_BYTES`.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path

from ..aptmodel.elements import formula, is_element, parse_formula
from ..aptmodel.ranging import Range, RangeFileWarning, RangeOverlapWarning, RangeTable
from .apt_errors import AptFormatError

__all__ = [
    "RANGE_SUFFIXES",
    "MAX_RANGE_FILE_BYTES",
    "read_ranges",
    "read_rrng",
    "read_rng",
    "read_env",
    "write_rrng",
    "find_range_file",
]

RANGE_SUFFIXES = (".rrng", ".rng", ".env")

#: Largest range file read (bytes); real ones are a few kB (1 M lines is about 60 MB).
MAX_RANGE_FILE_BYTES = 128 * 2**20

#: Line numbers named per kind of note; the rest are counted.
_LINES_SHOWN = 8

_SECTION = re.compile(r"\[\s*(\w+)\s*\]")
_RANGE_KEY = re.compile(r"range\d+")
_COLOR = re.compile(r"[0-9a-fA-F]{6}")
_CHARGE = re.compile(r"[+\-]+$")
_FORMULAS: dict[tuple, str] = {}


def _formula(comp: dict[str, int]) -> str:
    """:func:`formula`, memoized (bounded) for files with many ranges of few ions."""
    key = tuple(comp.items())
    f = _FORMULAS.get(key)
    if f is None:
        f = formula(comp)
        if len(_FORMULAS) < 10_000:
            _FORMULAS[key] = f
    return f


def _text_lines(path: Path) -> list[str]:
    try:
        st = os.stat(path)  # follows symlinks: a link to /dev/zero is a device
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a device or special file"
        )
        raise AptFormatError(path, f"not a regular file ({kind}); give a range file")
    if st.st_size > MAX_RANGE_FILE_BYTES:
        raise AptFormatError(
            path,
            f"{st.st_size:,} bytes is larger than a range file can be "
            f"({MAX_RANGE_FILE_BYTES:,} bytes at most)",
        )
    with open(path, "rb") as fh:  # bounded even if the file grows while read
        raw = fh.read(MAX_RANGE_FILE_BYTES + 1)
    if len(raw) > MAX_RANGE_FILE_BYTES:
        raise AptFormatError(
            path, f"larger than a range file can be ({MAX_RANGE_FILE_BYTES:,} bytes at most)"
        )
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
    if _COLOR.fullmatch(tok):
        return "#" + tok.lower()
    return None


class _Skip(ValueError):
    """A range line that cannot be read (skipped with a note)."""


class _Notes:
    """What a reader skipped or reinterpreted, grouped by kind, with line numbers."""

    def __init__(self) -> None:
        self.kinds: dict[str, tuple[list[int], list[str]]] = {}
        self.first_skip: tuple[int, str] | None = None
        self.last_skip: tuple[int, str] | None = None

    def add(self, kind: str, line: int, detail: str | None = None) -> None:
        lines, details = self.kinds.setdefault(kind, ([], []))
        lines.append(line)
        if detail is not None and detail not in details:
            details.append(detail)

    def skip(self, line: int, reason: str) -> None:
        if self.first_skip is None:
            self.first_skip = (line, reason)
        self.last_skip = (line, reason)
        self.add("malformed range lines skipped", line, reason)

    def texts(self) -> list[str]:
        out = []
        for kind, (lines, details) in self.kinds.items():
            shown = ", ".join(str(n) for n in lines[:_LINES_SHOWN])
            more = f" and {len(lines) - _LINES_SHOWN} more" if len(lines) > _LINES_SHOWN else ""
            word = "line" if len(lines) == 1 else "lines"
            extra = ""
            if details:
                extra = " (" + "; ".join(details[:3]) + ("; ..." if len(details) > 3 else "") + ")"
            out.append(f"{word} {shown}{more}: {kind}{extra}")
        return out


def _make(
    lo: float,
    hi: float,
    comp: dict[str, int],
    name: str | None,
    color: str | None,
    vol: float | None,
    notes: _Notes,
    lineno: int,
) -> Range:
    """A range; an unknown name without element counts becomes unranged-but-known."""
    if not comp:
        if not name:
            raise _Skip("neither element counts nor a Name")
        try:
            comp = parse_formula(_CHARGE.sub("", name))
        except ValueError:
            notes.add(
                "species without elements kept as unranged-but-known ions "
                "(counted and listed, not in element compositions)",
                lineno,
                repr(name),
            )
            comp = {}
    try:
        return Range(lo, hi, name or _formula(comp), comp, color, vol)
    except ValueError as exc:
        raise _Skip(str(exc)) from None


def _finish(
    path: Path, ranges: list[tuple[int, Range]], notes: _Notes, lines: list[str]
) -> RangeTable:
    """Dedupe, drop same-interval conflicts, build the table and warn once."""
    if notes.last_skip is not None and lines[-1].strip():
        ln, reason = notes.last_skip
        if ln == len(lines):  # the last line, cut without its line end: a truncated file
            raise AptFormatError(path, f"{reason} (truncated file?)", line=ln)
    if not ranges:
        if notes.first_skip is not None:
            ln, reason = notes.first_skip
            raise AptFormatError(path, f"{reason} (no readable range in the file)", line=ln)
        raise AptFormatError(path, "no ranges found", line=_last_line(lines))
    seen: dict[tuple, int] = {}
    interval: dict[tuple[float, float], tuple[int, Range]] = {}
    out = []
    for line, r in ranges:
        key = (
            r.lo,
            r.hi,
            r.ion if r.known_unranged else None,
            tuple(sorted(r.composition.items())),
        )
        if key in seen:
            notes.add("duplicate ranges kept once", line, f"{r.label()} as at line {seen[key]}")
            continue
        seen[key] = line
        first = interval.get((r.lo, r.hi))
        if first is not None:
            notes.add(
                "same mass interval as an earlier line with another ion: merged, the first "
                "line's ion kept",
                line,
                f"[{r.lo:g}, {r.hi:g}) {r.ion} vs {first[1].ion} at line {first[0]}",
            )
            continue
        interval[(r.lo, r.hi)] = (line, r)
        out.append(r)
    try:
        table = RangeTable(out, source=str(path), warn=False)
    except ValueError as exc:
        raise AptFormatError(path, str(exc)) from None
    table.notes = notes.texts() + table.notes
    if table.notes:
        overlap = any("overlap" in n for n in table.notes)
        warnings.warn(
            f"{path}: " + "; ".join(table.notes),
            RangeOverlapWarning if overlap else RangeFileWarning,
            stacklevel=3,
        )
    return table


# --------------------------------------------------------------------------- .rrng
def _rrng_range(value: str, notes: _Notes, lineno: int) -> Range:
    toks = value.split()
    bare = [t for t in toks if ":" not in t]
    fields = [t for t in toks if ":" in t]
    if len(bare) != 2 or not fields:
        raise _Skip(f"range needs 'lo hi' and key:value fields, got {value!r}")
    try:
        lo, hi = _num(bare[0]), _num(bare[1])
    except ValueError:
        raise _Skip(f"bad range bounds in {value!r}") from None
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
                    raise _Skip(f"unknown element {k!r}")
                n = int(round(_num(v)))
                if n > 0:
                    comp[el] = comp.get(el, 0) + n
        except ValueError as exc:
            if isinstance(exc, _Skip):
                raise
            raise _Skip(f"bad value in field {tok!r}") from None
    return _make(lo, hi, comp, name, color, vol, notes, lineno)


def read_rrng(path: str | os.PathLike) -> RangeTable:
    """Read an ``.rrng`` file (see module docs for the accepted variants)."""
    path = Path(path)
    lines = _text_lines(path)
    notes = _Notes()
    section = None
    found_ranges = False
    declared: int | None = None
    declared_line = 0
    n_lines = 0
    ranges: list[tuple[int, Range]] = []
    for lineno, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        m = _SECTION.fullmatch(s) if s[0] == "[" else None
        if m:
            section = m.group(1).lower()
            found_ranges |= section == "ranges"
            continue
        if section is None:
            notes.add("text before the first section skipped", lineno)
            continue
        if "=" not in s:
            notes.add("line without key=value skipped", lineno)
            continue
        key, _, value = (t.strip() for t in s.partition("="))
        if section != "ranges":
            continue
        if key.lower() == "number":
            try:
                declared = int(value)
            except ValueError:
                notes.add(f"unreadable Number={value!r} ignored", lineno)
                continue
            declared_line = lineno
            continue
        if not _RANGE_KEY.fullmatch(key.lower()):
            notes.add("unexpected keys in [Ranges] skipped", lineno, repr(key))
            continue
        n_lines += 1
        try:
            ranges.append((lineno, _rrng_range(value, notes, lineno)))
        except _Skip as exc:
            notes.skip(lineno, str(exc))
    if not found_ranges:
        raise AptFormatError(
            path, "no [Ranges] section (not an .rrng file)", line=_last_line(lines)
        )
    if declared is not None and declared > n_lines:
        raise AptFormatError(
            path,
            f"[Ranges] declares Number={declared} but {n_lines} range lines follow "
            "(truncated file?)",
            line=declared_line,
        )
    if declared is not None and declared < n_lines:
        notes.add(f"Number={declared} but {n_lines} range lines: all read", declared_line)
    return _finish(path, ranges, notes, lines)


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
    """Read an Oak Ridge ``.rng`` file (with its optional polyatomic extension).

    Species that are not elements (``unknown``, ``All``, ``X23``) are
    placeholders: a range counted only in such columns is an
    unranged-but-known ion named after the column.
    """
    path = Path(path)
    lines = _text_lines(path)
    notes = _Notes()
    rows = [(i + 1, ln.strip()) for i, ln in enumerate(lines)]
    pos = 0
    while pos < len(rows) and not re.fullmatch(r"\d+\s+\d+", rows[pos][1]):
        if rows[pos][1]:
            notes.add("text before the '<n_species> <n_ranges>' line skipped", rows[pos][0])
        pos += 1
    if pos == len(rows):
        raise AptFormatError(
            path, "no '<n_species> <n_ranges>' line (not an .rng file)", line=_last_line(lines)
        )

    def next_row():
        nonlocal pos
        while pos < len(rows) and not rows[pos][1]:
            pos += 1
        if pos >= len(rows):
            raise AptFormatError(path, "unexpected end of file", line=_last_line(lines))
        r = rows[pos]
        pos += 1
        return r

    def block():
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
                notes.skip(ln, f"expected '. lo hi' and {len(cols)} counts, got {s!r}")
                continue
            out.append((ln, lo, hi, {c: n for c, n in zip(cols, counts) if n > 0}, colors))
        return out

    main = block()
    names: dict[tuple[float, float], tuple[str, str | None]] = {}
    rest = [r for r in rows[pos:] if r[1]]
    if rest and "polyatomic" in rest[0][1].lower():
        while rows[pos][1].lower().find("polyatomic") < 0:
            pos += 1
        pos += 1
        for _ln, lo, hi, comp, colors in block():
            if len(comp) == 1:
                (nm,) = comp
                names[(lo, hi)] = (nm, colors.get(nm))
    ranges = []
    for ln, lo, hi, counts, colors in main:
        comp = {c: n for c, n in counts.items() if is_element(c)}
        placeholders = [c for c in counts if not is_element(c)]
        nm, col = names.get((lo, hi), (None, None))
        if placeholders and comp:
            notes.add("placeholder columns ignored beside elements", ln, str(placeholders))
        elif placeholders and nm is None:
            nm = "+".join(placeholders)
        if col is None and len(counts) == 1:
            col = colors.get(next(iter(counts)))
        if nm is not None and comp:
            try:
                named = parse_formula(nm)
            except ValueError:
                named = None  # a free-form name: keep it with the counts of the main block
            if named is not None and named != comp:
                notes.add(
                    f"polyatomic name {nm!r} disagrees with the counts {comp}: counts kept",
                    ln,
                )
                nm = None
        try:
            ranges.append((ln, _make(lo, hi, comp, nm, col, None, notes, ln)))
        except _Skip as exc:
            notes.skip(ln, str(exc))
    return _finish(path, ranges, notes, lines)


# --------------------------------------------------------------------------- .env
def read_env(path: str | os.PathLike) -> RangeTable:
    """Read the range definitions of a GPM/Rouen ``.env`` file.

    A species that is not a formula (``X23``, ``Hyd``) is an
    unranged-but-known ion.
    """
    path = Path(path)
    lines = _text_lines(path)
    notes = _Notes()
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
        try:
            if len(t) < 3:
                raise _Skip(f"expected 'Formula lo hi', got {s!r}")
            try:
                lo, hi = _num(t[1]), _num(t[2])
            except ValueError:
                raise _Skip(f"bad range bounds in {s!r}") from None
            ranges.append((i + 1, _make(lo, hi, {}, t[0], None, None, notes, i + 1)))
        except _Skip as exc:
            if start is not None:  # without the markers, other rows are not ranges
                notes.skip(i + 1, str(exc))
    return _finish(path, ranges, notes, lines)


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
