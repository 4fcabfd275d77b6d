"""One reusable way to run engine work from a dock.

:func:`run_job` runs ``func(*args, progress=Progress, **kwargs)`` on a
``napari.qt.threading`` worker thread. Progress reported by the engine is
forwarded through a queued Qt signal to a ``napari.utils.progress`` bar on
the main thread; ``on_done`` (which may add or update layers) also runs on
the main thread. :meth:`Job.cancel` sets the engine's cancel flag; the
engine stops at its next :meth:`~napari_interfaces.core.progress.Progress.advance`.

For tests and scripts, ``sync=True`` runs the same code in the calling thread
(the micro-sam "testability switch").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, Signal

from ..core.progress import Cancelled, Progress

__all__ = ["Job", "notify_error", "run_job"]

log = logging.getLogger(__name__)


def notify_error(exc: BaseException, what: str = "") -> None:
    """Show ``exc`` as a napari notification.

    An :class:`~napari_interfaces.core.errors.InputError` (bad input: a file,
    a parameter) is one line; any other exception is a bug and keeps its
    traceback (napari's "View traceback" button) and is logged.
    """
    from napari.utils.notifications import Notification, notification_manager, show_error

    from ..core.errors import InputError

    prefix = f"{what}: " if what else ""
    if isinstance(exc, InputError):
        show_error(f"{prefix}{exc}")
        return
    log.error("%sfailed", prefix, exc_info=(type(exc), exc, exc.__traceback__))
    try:
        notification_manager.dispatch(Notification.from_exception(exc))
    except Exception:  # never fail while reporting a failure
        show_error(f"{prefix}{type(exc).__name__}: {exc}")


class _Relay(QObject):
    """Lives in the main thread; its signals queue calls from workers."""

    progressed = Signal(int, object, str)


class Job:
    """Handle of a running job: cancel it, wait for it, read its state.

    Attributes
    ----------
    state : str
        ``"running"``, ``"done"``, ``"cancelled"`` or ``"error"``.
    result : Any
        What the engine function returned (when ``state == "done"``).
    error : BaseException or None
        The exception when ``state == "error"``.
    """

    def __init__(self, description: str) -> None:
        self.description = description
        self.progress_obj = Progress()
        self.state = "running"
        self.result: Any = None
        self.error: BaseException | None = None
        self.worker = None  # napari worker when threaded
        self._pbar = None

    def cancel(self) -> None:
        """Ask the engine to stop at its next progress check."""
        self.progress_obj.cancel()

    @property
    def finished(self) -> bool:
        return self.state != "running"


def run_job(
    func: Callable[..., Any],
    *args: Any,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_cancel: Callable[[], None] | None = None,
    description: str = "",
    sync: bool = False,
    show_progress: bool = True,
    on_progress: Callable[[int, Any, str], None] | None = None,
    **kwargs: Any,
) -> Job:
    """Run ``func(*args, progress=..., **kwargs)`` in the background.

    Parameters
    ----------
    func : callable
        An engine function accepting a ``progress`` keyword.
    on_done, on_error, on_cancel : callable, optional
        Main-thread callbacks. ``on_error`` defaults to showing the message
        with ``napari.utils.notifications.show_error`` (the GUI does not
        crash on bad input).
    description : str
        Label of the progress bar.
    sync : bool
        Run in the calling thread instead of a worker (tests, scripts).
    show_progress : bool
        Show a ``napari.utils.progress`` bar in the activity dock.
    on_progress : callable, optional
        ``on_progress(done, total, step)`` on the main thread after every
        progress report of the engine (a dock's own progress bar).

    Returns
    -------
    Job
    """
    job = Job(description)

    def _error(exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            job.state = "cancelled"
            if on_cancel is not None:
                on_cancel()
            return
        job.state = "error"
        job.error = exc
        if on_error is not None:
            on_error(exc)
        else:
            notify_error(exc, description or getattr(func, "__name__", ""))

    def _done(result: Any) -> None:
        job.state = "done"
        job.result = result
        if on_done is not None:
            on_done(result)

    if sync:
        if on_progress is not None:
            job.progress_obj.callback = on_progress
        try:
            result = func(*args, progress=job.progress_obj, **kwargs)
        except BaseException as exc:  # forwarded to on_error
            _error(exc)
        else:
            _done(result)
        return job

    from napari.qt.threading import create_worker
    from napari.utils import progress as napari_progress

    relay = _Relay()
    if show_progress:
        job._pbar = napari_progress(total=0, desc=description or func.__name__)

    def _on_progress(done: int, total: Any, message: str) -> None:
        if on_progress is not None:
            try:
                on_progress(done, total, message)
            except RuntimeError:  # the dock's widgets are gone
                pass
        pbar = job._pbar
        if pbar is None:
            return
        if total is not None and pbar.total != total:
            pbar.total = total
        if message:
            pbar.set_description(message)
        pbar.n = done
        pbar.refresh()

    relay.progressed.connect(_on_progress)
    # Emitting a signal of a main-thread QObject from the worker thread is
    # delivered as a queued call on the main thread.
    job.progress_obj.callback = lambda d, t, m: relay.progressed.emit(d, t, m)
    job._relay = relay  # keep alive

    def _close_bar(*_: Any) -> None:
        if job._pbar is not None:
            job._pbar.close()
            job._pbar = None

    # _ignore_errors: errors are handled by _error (on_error/notification), not re-raised.
    worker = create_worker(
        func,
        *args,
        progress=job.progress_obj,
        _start_thread=False,
        _ignore_errors=True,
        **kwargs,
    )
    worker.returned.connect(_done)
    worker.errored.connect(_error)
    worker.finished.connect(_close_bar)
    job.worker = worker
    worker.start()
    return job
