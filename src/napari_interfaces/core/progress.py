"""Progress reporting and cooperative cancellation for engine functions.

Every long-running engine function takes an optional ``progress`` argument
(a :class:`Progress`, or ``None`` for silence). The engine calls
:meth:`Progress.advance` as work gets done; each call also checks for
cancellation and raises :class:`Cancelled` when the user asked to stop. The
same object drives a ``tqdm`` bar on the command line
(:func:`cli_progress`) and a ``napari.utils.progress`` bar in the GUI (see
``napari_interfaces._widgets._jobs``), so engine code never knows which one it
is talking to.

Examples
--------
>>> from napari_interfaces.core.progress import Progress
>>> seen = []
>>> p = Progress(callback=lambda done, total, msg: seen.append((done, total)))
>>> p.start(total=2, description="work")
>>> p.advance(); p.advance()
>>> seen[-1]
(2, 2)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["Cancelled", "Progress", "ProgressCallback", "as_progress", "cli_progress"]

T = TypeVar("T")

#: ``callback(done, total, description)``; ``total`` may be ``None`` (unknown).
ProgressCallback = Callable[[int, "int | None", str], None]


class Cancelled(Exception):
    """Raised inside an engine function when its job was cancelled."""


class Progress:
    """Progress counter with a cancellation flag.

    Parameters
    ----------
    callback : callable, optional
        Called as ``callback(done, total, description)`` after every change.
        It may be called from a worker thread; GUI code must marshal it to
        the main thread (``_widgets._jobs`` does).
    cancel_event : threading.Event, optional
        When set, the next :meth:`advance` or :meth:`check` raises
        :class:`Cancelled`. A fresh event is made when omitted.
    """

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
    ) -> None:
        self.callback = callback
        self.cancel_event = cancel_event if cancel_event is not None else threading.Event()
        self.done = 0
        self.total: int | None = None
        self.description = ""

    # -- reporting ---------------------------------------------------------
    def start(self, total: int | None, description: str | None = None) -> None:
        """Begin a (new) stage with ``total`` steps; resets the counter."""
        self.check()
        self.done = 0
        self.total = total
        if description is not None:
            self.description = description
        self._emit()

    def advance(self, n: int = 1, description: str | None = None) -> None:
        """Count ``n`` more steps done, then check for cancellation."""
        self.done += n
        if description is not None:
            self.description = description
        self._emit()
        self.check()

    def iterate(
        self, items: Iterable[T], total: int | None = None, description: str | None = None
    ) -> Iterator[T]:
        """Yield from ``items``, advancing once per item (checks cancel first)."""
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        self.start(total, description)
        for item in items:
            self.check()
            yield item
            self.advance()

    def _emit(self) -> None:
        if self.callback is not None:
            self.callback(self.done, self.total, self.description)

    # -- cancellation ------------------------------------------------------
    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancellation was requested."""
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self.cancel_event.is_set():
            raise Cancelled(self.description or "cancelled")


def as_progress(progress: Progress | None) -> Progress:
    """Return ``progress`` or a silent :class:`Progress` when ``None``."""
    return progress if progress is not None else Progress()


def cli_progress(enabled: bool = True, **tqdm_kwargs) -> Progress:
    """A :class:`Progress` that draws a ``tqdm`` bar on stderr when stderr is a terminal.

    Parameters
    ----------
    enabled : bool
        ``False`` gives a silent progress (e.g. for JSON output).

    Notes
    -----
    Without a terminal (a log file, a pipe, a batch job, a test capturing
    stderr) no bar is drawn: bars there are noise between the lines a script
    reads, and a bar left open by a failed run shifted the next run's bars
    onto new lines (tqdm's nesting), so an error no longer stood alone on one
    line of stderr.
    """
    import sys

    if not enabled or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return Progress()
    from tqdm.auto import tqdm

    state: dict[str, object] = {"bar": None, "total": object()}

    def callback(done: int, total: int | None, description: str) -> None:
        bar = state["bar"]
        if bar is None or state["total"] != total or done < bar.n:  # type: ignore[attr-defined]
            if bar is not None:
                bar.close()  # type: ignore[attr-defined]
            bar = tqdm(total=total, desc=description, leave=False, **tqdm_kwargs)
            state["bar"], state["total"] = bar, total
        bar.set_description(description, refresh=False)  # type: ignore[attr-defined]
        bar.update(done - bar.n)  # type: ignore[attr-defined]

    return Progress(callback=callback)
