"""The background-job pattern every dock uses: progress, cancel, main thread."""

from __future__ import annotations

import threading
import time

import pytest

from napari_interfaces.core.progress import as_progress

pytestmark = pytest.mark.gui


def slow_engine_function(n_steps: int, step_s: float, record: list, progress=None):
    """A stand-in engine loop: reports progress every step, like the real ones."""
    progress = as_progress(progress)
    progress.start(n_steps, "slow work")
    for i in range(n_steps):
        time.sleep(step_s)
        record.append((i, threading.current_thread().name))
        progress.advance()
    return "finished"


def test_cancelled_job_stops_and_gui_stays_responsive(make_napari_viewer, qtbot):
    from qtpy.QtCore import QTimer

    from napari_interfaces._widgets._jobs import run_job

    make_napari_viewer()  # napari's progress bars live in a viewer's activity dock
    record: list = []
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)

    main_thread = threading.current_thread().name
    cancelled = []
    job = run_job(
        slow_engine_function,
        1000,
        0.01,
        record,
        description="cancel me",
        on_cancel=lambda: cancelled.append(threading.current_thread().name),
        on_done=lambda r: pytest.fail("a cancelled job must not complete"),
    )
    qtbot.waitUntil(lambda: len(record) >= 5, timeout=10_000)
    job.cancel()
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    timer.stop()

    assert job.state == "cancelled"
    assert cancelled == [main_thread]  # callback delivered on the main thread
    assert 5 <= len(record) < 1000  # stopped early
    n_at_cancel = len(record)
    qtbot.wait(100)
    assert len(record) == n_at_cancel  # and really stopped
    # the engine ran on a worker thread, never on the GUI thread
    assert all(name != main_thread for _, name in record)
    # the event loop kept turning while the worker ran (>= 3 timer ticks)
    assert len(ticks) >= 3


def test_job_result_and_progress_on_main_thread(make_napari_viewer, qtbot):
    from napari_interfaces._widgets._jobs import run_job

    make_napari_viewer()
    results = []
    job = run_job(
        slow_engine_function,
        5,
        0.001,
        [],
        description="finish me",
        on_done=lambda r: results.append((r, threading.current_thread().name)),
    )
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    assert job.state == "done"
    assert results == [("finished", threading.current_thread().name)]
    assert job._pbar is None  # the progress bar was closed


def test_errors_reach_on_error_not_a_crash(qtbot):
    from napari_interfaces._widgets._jobs import run_job

    def bad(progress=None):
        raise ValueError("file.pos: size 17 is not a multiple of 16 bytes")

    errors = []
    job = run_job(bad, on_error=errors.append, show_progress=False)
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    assert job.state == "error"
    assert "multiple of 16" in str(errors[0])


def test_sync_mode_runs_inline():
    from napari_interfaces._widgets._jobs import run_job

    out = []
    job = run_job(slow_engine_function, 3, 0.0, [], sync=True, on_done=out.append)
    assert job.state == "done" and out == ["finished"]
