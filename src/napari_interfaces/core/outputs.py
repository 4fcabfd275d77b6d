"""Safe outputs: never write over an input, refuse existing outputs, write atomically.

Every command and dock that writes files goes through these helpers:

- :func:`check_output` refuses an output that is one of the inputs (always)
  or that exists already (unless ``overwrite``).
- :func:`atomic_file` yields a temporary path in the destination folder and
  moves it into place with :func:`os.replace` only when the block succeeds,
  so a crash or a kill never leaves a half-written file under the final name.
- :func:`atomic_dir` does the same for a multi-file result: files are written
  into a temporary sibling folder, which replaces the destination folder in
  one step (stale files from an earlier run never survive).
- :func:`cleanup_stale` removes temporary files left by a killed run.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_file(d / "a.txt") as tmp:
...     _ = tmp.write_text("hello")
>>> (d / "a.txt").read_text()
'hello'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import OutputExistsError

__all__ = [
    "TMP_MARK",
    "atomic_dir",
    "atomic_file",
    "check_output",
    "cleanup_stale",
    "same_file",
]

#: Marker in the names of temporary files and folders (``.name.<TMP_MARK>-<id>``).
TMP_MARK = "napari-interfaces-tmp"


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (resolving links; False if either is missing)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.expanduser().resolve() == pb.expanduser().resolve()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_output(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike] = (),
    *,
    overwrite: bool = False,
    name: str = "--out",
) -> Path:
    """Check that ``path`` may be written; return it as a :class:`Path`.

    Parameters
    ----------
    path : path-like
        The output file or folder.
    inputs : iterable of path-like
        The command's input files. An output that is, or (for a folder)
        contains, an input is refused even with ``overwrite``.
    overwrite : bool
        Allow replacing an existing output.
    name : str
        The parameter's name, for the message.

    Raises
    ------
    OutputExistsError
        One line naming the parameter and the path.
    """
    out = Path(path).expanduser()
    for inp in inputs:
        ip = Path(inp).expanduser()
        if same_file(out, ip):
            raise OutputExistsError(f"{name} {out} is one of the inputs; choose another output")
        if out.is_dir() and _inside(ip, out):
            raise OutputExistsError(
                f"{name} {out} contains the input {ip}; choose another output folder"
            )
    if out.exists() and not overwrite:
        kind = "folder" if out.is_dir() else "file"
        raise OutputExistsError(f"{name} {out}: {kind} exists; pass --overwrite to replace it")
    return out


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    return path.with_name(f".{path.name}.{TMP_MARK}-{uuid.uuid4().hex[:8]}{suffix}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it to ``path`` on success.

    The temporary file keeps ``path``'s suffix (writers that choose the
    format by suffix still work). On an exception it is removed and the
    existing ``path``, if any, is untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final, "".join(final.suffixes[-1:]))
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the writer produced no file")
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` on success.

    An existing ``path`` is moved aside and deleted only after the new
    folder is in place, so a failure leaves the old result intact.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final)
    tmp.mkdir()
    old = None
    try:
        yield tmp
        if final.exists():
            old = _tmp_sibling(final, ".old")
            os.replace(final, old)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            if not final.exists():  # replacing failed: put the old result back
                os.replace(old, final)
            elif old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()


def cleanup_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files/folders left in ``folder`` by a killed run; return them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.glob(f".*.{TMP_MARK}-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed
