"""Folders of images: list them, and watch one for images as they are written.

Used by every command that labels a folder or a growing series (``cluster
--apply-to/--watch``, ``classify --apply-to/--watch``):

* :func:`list_images` -- the image files directly in a folder, sorted;
* :func:`watch_folder` -- calls back for each image once it is completely
  written (its size and modification time the same at two polls), first the
  images already there, then new ones, with retries for files still being
  written and a timeout without new images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.params import positive
from ..core.spec import param
from .micrograph import MICROGRAPH_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "list_images", "poll_param", "watch_folder", "watch_timeout_param"]

IMAGE_SUFFIXES = MICROGRAPH_SUFFIXES  # the one list (io/micrograph.py)


def watch_timeout_param(**kw: Any) -> Any:
    """The spec field of a watch's timeout, declared once for every command that watches."""
    return param(
        None,
        "stop watching after this long without a new image",
        unit="s",
        lo=0,
        lo_open=True,
        none="off",
        gui=False,
        **kw,
    )


def poll_param(**kw: Any) -> Any:
    """The spec field of a watch's poll interval, declared once for every command that watches."""
    return param(
        0.5, "watch poll interval", unit="s", lo=0, lo_open=True, hi=3600, gui=False, **kw
    )


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (sorted; hidden and temporary files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _stable_files(folder: Path, seen: dict, done: set) -> Iterator[Path]:
    """Files whose (size, mtime) did not change since the previous poll."""
    for p in list_images(folder):
        if p in done:
            continue
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        sig = (st.st_size, st.st_mtime_ns)
        if st.st_size > 0 and seen.get(p) == sig:
            yield p
        seen[p] = sig


def watch_folder(
    folder: str | Path,
    on_image: Callable[[Path], None],
    *,
    poll: float = 0.5,
    timeout: float | None = None,
    stop: Callable[[], bool] | None = None,
    retries: int = 3,
    on_error: Callable[[Path, Exception], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Path]:
    """Call ``on_image(path)`` for every image in ``folder``, once it is completely written.

    Images present at the start are handled first, then new ones as they
    appear. A file counts as complete when its size and modification time
    are the same at two polls ``poll`` seconds apart; a file that still
    cannot be read is retried ``retries`` times, then reported with
    ``on_error`` and skipped.

    Parameters
    ----------
    timeout : float, optional
        Stop after this many seconds without a new image (``None``: never;
        stop with Ctrl-C or ``stop``).
    stop : callable, optional
        Polled; returning True stops the watch.

    Returns
    -------
    list of Path
        The images handled, in order.
    """
    folder = Path(folder)
    poll = positive("poll", poll)
    if timeout is not None:
        timeout = positive("timeout", timeout)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    seen: dict = {}
    done: set = set()
    failures: dict = {}
    handled: list[Path] = []
    last = time.monotonic()
    while True:
        if stop is not None and stop():
            break
        for p in list(_stable_files(folder, seen, done)):
            try:
                on_image(p)
            except (InputError, OSError) as exc:
                failures[p] = failures.get(p, 0) + 1
                if failures[p] <= retries:
                    seen.pop(p, None)  # maybe still being written: look again
                    continue
                done.add(p)
                if on_error is not None:
                    on_error(p, exc)
                continue
            done.add(p)
            handled.append(p)
            last = time.monotonic()
        if timeout is not None and time.monotonic() - last >= timeout:
            break
        sleep(poll)
    return handled
