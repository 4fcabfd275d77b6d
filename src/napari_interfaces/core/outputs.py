"""Safe outputs: never write over an input, refuse existing outputs, write atomically.

Every command and dock that writes files goes through these helpers:

- :func:`check_output` refuses an output that is one of the inputs (always)
  or that exists already (unless ``overwrite``), and a folder that cannot
  be written (read-only, full), before any work starts.
- :func:`safe_name` and :func:`output_path` turn text taken from a file
  (ion and species names, image and series names) into one file name that
  stays inside the output folder (no ``/``, no ``..``, no control bytes).
- :func:`atomic_file` yields a temporary path in the destination folder and
  moves it into place with :func:`os.replace` only when the block succeeds,
  so a crash or a kill never leaves a half-written file under the final name.
- :func:`atomic_dir` does the same for a multi-file result: files are written
  into a temporary sibling folder, which replaces the destination folder in
  one step (stale files from an earlier run never survive).
- :func:`cleanup_stale` removes temporary files left by a killed run of
  *this user on this host* whose process is gone -- never another run's.

Temporary files
---------------
Temporary files and folders are created with :func:`tempfile.mkstemp` /
:func:`tempfile.mkdtemp` in the destination folder (``O_CREAT | O_EXCL``,
mode 0600/0700, an unpredictable suffix), so a symlink planted at a
guessable name is never written through. Their names say who owns them::

    .<name>.napari-interfaces-tmp-<command>-<host>-<pid>-<random><suffix>

On SIGTERM, SIGINT or SIGHUP (while a temporary exists) and at exit a run
removes its own temporaries; the next run removes those whose process is
gone (same host, same user); names it cannot attribute are left alone.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_file(d / "a.txt") as tmp:
...     _ = tmp.write_text("hello")
>>> (d / "a.txt").read_text()
'hello'
>>> safe_name("Name:x/../../victim")
'Name_x_.._.._victim'
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import InputError, OutputExistsError, ref

__all__ = [
    "TMP_MARK",
    "WriteError",
    "atomic_dir",
    "atomic_file",
    "check_output",
    "check_writable",
    "cleanup_stale",
    "output_path",
    "safe_name",
    "safe_names",
    "same_file",
    "set_command",
    "temp_dir",
    "verify_files",
]

#: Marker in the names of temporary files and folders (``.name.<TMP_MARK>-<owner>-<id>``).
TMP_MARK = "napari-interfaces-tmp"

#: Longest file name :func:`safe_name` returns (room for a prefix and a suffix in 255 bytes).
MAX_NAME = 120

_TMP_RE = re.compile(
    rf"\.{re.escape(TMP_MARK)}-(?P<cmd>[A-Za-z0-9]+)-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,@%-]+")


class WriteError(InputError):
    """Writing an output failed (disk full, file too large, read-only): names the file."""


# ---------------------------------------------------------------- names
def safe_name(text: object, default: str = "unnamed") -> str:
    """One file name built from ``text`` taken from a file's contents.

    Characters other than letters, digits and ``._+=,@%-`` become ``_`` (so
    no ``/``, ``\\``, ``:``, NUL or control byte survives), leading dots and
    dashes are dropped (no hidden file, no ``..``, no option-like name), and
    the result is at most :data:`MAX_NAME` characters. Empty -> ``default``.
    """
    s = unicodedata.normalize("NFKC", str(text))
    s = _UNSAFE.sub("_", s).lstrip(".-")
    s = s[:MAX_NAME].rstrip(".")
    return s or default


def safe_names(texts: Sequence[object], default: str = "unnamed") -> list[str]:
    """:func:`safe_name` of each text, made unique (``_2``, ``_3``... on a clash)."""
    out: list[str] = []
    seen: set[str] = set()
    for t in texts:
        base = safe_name(t, default)
        name, k = base, 1
        while name.lower() in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name.lower())
        out.append(name)
    return out


def output_path(folder: str | os.PathLike, name: str, *, what: str = "out") -> Path:
    """``folder / name``, refused unless it lies inside ``folder``.

    ``name`` must be one path component (use :func:`safe_name` on text from
    a file first); a name with a separator, ``..``, or one that resolves
    outside ``folder`` (through a symlink) is an :class:`InputError`.
    """
    folder = Path(folder)
    name = str(name)
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or (os.sep != "/" and os.sep in name)
        or "\0" in name
    ):
        raise InputError(f"{ref(what)} {folder}: output name {name!r} is not a plain file name")
    path = folder / name
    if not _inside(path, folder) or (path.is_symlink() and not _inside(path.parent, folder)):
        raise InputError(f"{ref(what)} {folder}: output {name!r} would lie outside the folder")
    return path


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
    name: str = "out",
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
    WriteError
        The folder cannot be written (read-only, no permission, no space).
    """
    out = Path(path).expanduser()
    for inp in inputs:
        ip = Path(inp).expanduser()
        if same_file(out, ip):
            raise OutputExistsError(
                f"{ref(name)} {out} is one of the inputs; choose another output"
            )
        if out.is_dir() and _inside(ip, out):
            raise OutputExistsError(
                f"{ref(name)} {out} contains the input {ip}; choose another output folder"
            )
    if out.exists() and not overwrite:
        kind = "folder" if out.is_dir() else "file"
        raise OutputExistsError(
            f"{ref(name)} {out}: {kind} exists; pass {ref('overwrite')} to replace it"
        )
    check_writable(out, name=name)
    return out


def check_writable(path: str | os.PathLike, *, name: str = "out") -> None:
    """Refuse an output whose folder cannot be written (checked before any work).

    The nearest existing folder of ``path`` must be a folder this process
    may write, on a file system with free space; one line names the
    parameter, the folder and the reason.
    """
    p = Path(path).expanduser().absolute()
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise WriteError(f"{ref(name)} {p}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WriteError(f"{ref(name)} {p}: cannot write in {folder} (read-only or no permission)")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None and free < (1 << 20):
        raise WriteError(f"{ref(name)} {p}: {folder} has no free space ({free} bytes)")


# ---------------------------------------------------------------- temporaries
_command: str | None = None
_live: dict[str, bool] = {}  # temporary path -> is a folder
_lock = threading.Lock()
_handlers: dict[int, object] = {}


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)[:32] or "x"


def set_command(name: str) -> None:
    """Name the running command in temporary names (the CLI and the docks set it)."""
    global _command
    _command = _tag(name)


def _default_command() -> str:
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    words = [a for a in sys.argv[1:3] if a and not a.startswith("-")]
    if "napari" in argv0 and "interfaces" in argv0 or argv0 == "__main__.py":
        n = 2 if words[:1] in (["apt"], ["simulate"]) else 1  # command groups
        return _tag("".join(words[:n]) or "cli")
    return _tag(Path(argv0).stem)


def _host() -> str:
    return _tag(socket.gethostname())


def _owner() -> str:
    return f"{_command or _default_command()}-{_host()}-{os.getpid()}"


def _prefix(final: Path) -> str:
    return f".{final.name[:MAX_NAME]}.{TMP_MARK}-{_owner()}-"


def _remove(path: str, is_dir: bool) -> None:
    with contextlib.suppress(OSError):
        if is_dir and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def _cleanup_live() -> None:
    with _lock:
        items = list(_live.items())
        _live.clear()
    for p, is_dir in items:
        _remove(p, is_dir)


atexit.register(_cleanup_live)


def _on_signal(signum, frame):  # noqa: ARG001
    _cleanup_live()
    _restore_handlers()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    if threading.current_thread() is not threading.main_thread() or _handlers:
        return
    for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        with contextlib.suppress(ValueError, OSError):
            prev = signal.getsignal(sig)
            # only replace the defaults: a host application's own handlers stay
            if prev in (signal.SIG_DFL, signal.default_int_handler):
                signal.signal(sig, _on_signal)
                _handlers[sig] = prev


def _restore_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, prev in list(_handlers.items()):
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) is _on_signal:
                signal.signal(sig, prev)
        _handlers.pop(sig, None)


def _register(path: Path, is_dir: bool) -> None:
    with _lock:
        _live[str(path)] = is_dir
        _install_handlers()


def _unregister(path: Path) -> None:
    with _lock:
        _live.pop(str(path), None)
        if not _live:
            _restore_handlers()


def _new_temp(final: Path, suffix: str = "", *, folder: bool = False) -> Path:
    """A new temporary file or folder beside ``final``, created exclusively."""
    try:
        if folder:
            tmp = Path(tempfile.mkdtemp(prefix=_prefix(final), suffix=suffix, dir=final.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=_prefix(final), suffix=suffix, dir=final.parent)
            os.close(fd)
            tmp = Path(name)
    except OSError as exc:
        raise _write_error(exc, final) from exc
    _register(tmp, folder)
    return tmp


@contextlib.contextmanager
def temp_dir(final: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``final`` (owned, removed afterwards, also on signals)."""
    final = Path(final)
    tmp = _new_temp(final, folder=True)
    try:
        yield tmp
    finally:
        _remove(str(tmp), True)
        _unregister(tmp)


_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, getattr(errno, "EDQUOT", -1), errno.EIO}


def _write_error(exc: OSError, final: Path) -> InputError | OSError:
    """An OSError from writing ``final`` as one line that names the file."""
    if isinstance(exc, InputError):
        return exc
    if exc.errno in _WRITE_ERRNOS or exc.filename is None:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return WriteError(f"{final}: cannot write: {' '.join(reason.split())}")
    return exc


def _written(tmp: Path, created_ns: int) -> bool:
    try:
        st = tmp.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) or st.st_size > 0 or st.st_mtime_ns != created_ns


def _prepare_parent(final: Path) -> None:
    """Create ``final``'s folder (a failure names ``final``) and remove a killed
    run's own leftovers there (dead pid, this host, this user)."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(exc, final) from exc
    _cleanup_once(final.parent)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it to ``path`` on success.

    The temporary file is created exclusively (:func:`tempfile.mkstemp`,
    empty) and keeps ``path``'s suffix (writers that choose the format by
    suffix still work). On an exception it is removed and the existing
    ``path``, if any, is untouched. A write failure (disk full, file size
    limit, read-only) becomes a :class:`WriteError` naming ``path``. A
    symlink at ``path`` is replaced, never written through.
    """
    final = Path(path)
    _prepare_parent(final)
    tmp = _new_temp(final, "".join(final.suffixes[-1:]))
    created = tmp.lstat().st_mtime_ns
    try:
        try:
            yield tmp
            if not _written(tmp, created):
                raise FileNotFoundError(f"{tmp}: the writer produced no file")
            os.replace(tmp, final)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and "produced no file" in str(exc):
                raise
            raise _write_error(exc, final) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()
        _unregister(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` on success.

    An existing ``path`` is moved aside and deleted only after the new
    folder is in place, so a failure leaves the old result intact. If the
    temporary folder was removed or replaced meanwhile (by another process)
    the block fails instead of publishing an incomplete result.
    """
    final = Path(path)
    _prepare_parent(final)
    tmp = _new_temp(final, folder=True)
    # an open handle keeps the folder's inode from being reused if it is removed
    fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    ident = _ident(tmp)
    old = None
    try:
        try:
            yield tmp
            if _ident(tmp) != ident or os.fstat(fd).st_nlink == 0:
                raise WriteError(
                    f"{final}: the temporary folder {tmp.name} was removed or replaced "
                    "by another process while writing; nothing was published"
                )
            if final.is_symlink() or final.exists():
                real_dir = final.is_dir() and not final.is_symlink()
                old = _new_temp(final, ".old", folder=real_dir)
                os.replace(final, old)
            os.replace(tmp, final)
        except OSError as exc:
            raise _write_error(exc, final) from exc
    finally:
        os.close(fd)
        if tmp.exists() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        _unregister(tmp)
        if old is not None:
            if not (final.exists() or final.is_symlink()) and (old.exists() or old.is_symlink()):
                os.replace(old, final)  # replacing failed: put the old result back
            else:
                _remove(str(old), old.is_dir() and not old.is_symlink())
            _unregister(old)


def _ident(p: Path) -> tuple[int, int] | None:
    try:
        st = p.lstat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def verify_files(folder: str | os.PathLike, names: Iterable[str], what: str = "summary") -> None:
    """Check that every file a summary lists exists in ``folder`` (one line if not)."""
    folder = Path(folder)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise WriteError(
            f"{folder}: {len(missing)} file(s) listed in the {what} are missing after "
            f"writing (e.g. {missing[0]}); was the folder changed by another process?"
        )


# ---------------------------------------------------------------- stale temporaries
def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


_cleaned: set[str] = set()


def _cleanup_once(folder: Path) -> None:
    """:func:`cleanup_stale` of ``folder``, once per process (writes of many files stay O(n))."""
    key = os.path.abspath(folder)
    if key in _cleaned:
        return
    with contextlib.suppress(OSError):
        cleanup_stale(folder)
    _cleaned.add(key)


def cleanup_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove temporaries a killed run left in ``folder``; return them.

    Only entries this user owns, named by this host (see the module
    docstring), whose process is gone, are removed; another run's
    temporaries (alive, another host, another user) and names without an
    owner are left alone. Symlinks are unlinked, never followed.
    """
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    host, uid = _host(), os.getuid() if hasattr(os, "getuid") else None
    for p in folder.glob(f".*.{TMP_MARK}-*"):
        m = _TMP_RE.search(p.name)
        if m is None or m["host"] != host:
            continue
        try:
            st = p.lstat()
        except OSError:
            continue
        if uid is not None and st.st_uid != uid:
            continue
        if _pid_alive(int(m["pid"])):
            continue
        with _lock:
            if str(p) in _live:
                continue
        _remove(str(p), stat.S_ISDIR(st.st_mode))
        removed.append(p)
    return removed
