"""Run many independent tasks on dask, with back-pressure and cancellation.

One runner for every batch command (``simulate database``, ``apt segment``):
:func:`run_tasks` calls ``fn(item, **kwargs)`` for every item and hands each
result to ``on_result`` in the calling process, as results arrive (in
completion order, not item order). It

- keeps only a few tasks in flight (``2 ×`` the worker threads), so results
  never pile up in memory faster than ``on_result`` consumes them
  (back-pressure) and each result is released once consumed;
- groups several items per task (``per_task``) to save scheduler round
  trips on a busy machine;
- checks ``progress`` for cancellation at least twice a second, then stops
  submitting and cancels the pending tasks;
- starts a ``distributed.LocalCluster`` of single-threaded worker processes
  by default (``workers × threads_per_worker`` capped at the cores; one
  thread per BLAS/FFT pool on each worker, :data:`WORKER_ENV`), computes in
  the calling process with ``scheduler="inline"``, connects to an existing
  scheduler with an address (``tcp://host:8786``), or uses a ``Client``.

dask is imported only when a cluster is used; this module imports no Qt or
napari.

Security and file systems
-------------------------
- **A scheduler can run code on the client.** dask sends results as pickles
  and the client unpickles them, so whoever controls the scheduler (or its
  workers) can run arbitrary code in the calling process. Connect only to a
  scheduler you (or your HPC allocation) started, over a trusted network or
  TLS (``tls://`` with dask's security settings).
- **Workers use their own file systems.** A task that reads inputs or
  writes outputs by path (``apt segment``) does so on the worker's machine:
  on a remote cluster those paths must exist there (a shared file system),
  or the task must return the data so that ``on_result`` writes it here
  (``simulate database`` works that way: workers only compute).

Examples
--------
>>> out = []
>>> info = run_tasks(lambda x, k: x * k, [1, 2, 3], kwargs={"k": 10},
...                  on_result=out.append, scheduler="inline")
>>> sorted(out), info.scheduler
([10, 20, 30], 'inline')
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import InputError, ParameterError, ref
from .progress import Progress, as_progress

__all__ = [
    "WORKER_ENV",
    "RunInfo",
    "cap_workers",
    "check_scheduler_address",
    "run_tasks",
]

#: Environment of local worker processes: one thread per BLAS/FFT pool.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

#: Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT = 5.0

#: ``RunInfo.scheduler`` of a local run without the ``distributed`` package (plain install)
NO_DISTRIBUTED = 'inline (no parallel workers: pip install "napari-interfaces[distributed]")'


@dataclass(frozen=True)
class RunInfo:
    """What :func:`run_tasks` ran on.

    Attributes
    ----------
    scheduler : str
        ``"inline"``, ``"LocalCluster(WxT)"``, the address, or ``"client"``.
    workers : int
        Number of workers (1 inline).
    tasks : int
        Number of items computed.
    seconds : float
        Wall time from the first submission to the last result.
    """

    scheduler: str
    workers: int
    tasks: int
    seconds: float


def cap_workers(workers: int | None, threads_per_worker: int = 1, name: str = "workers") -> int:
    """Local worker processes: ``workers`` (default: all cores), capped so that
    ``workers × threads_per_worker`` does not exceed the cores.

    Raises
    ------
    ParameterError
        ``workers`` or ``threads_per_worker`` below 1.
    """
    cores = os.cpu_count() or 1
    if int(threads_per_worker) < 1:
        raise ParameterError("threads_per_worker", f"must be >= 1, got {threads_per_worker}")
    per = int(threads_per_worker)
    if workers is None:
        workers = max(1, cores // per)
    if int(workers) < 1:
        raise ParameterError(name, f"must be >= 1, got {workers}")
    return max(1, min(int(workers), cores // per))


def check_scheduler_address(
    address: str, timeout: float = CONNECT_TIMEOUT, name: str = "scheduler"
) -> None:
    """Fail fast when nothing listens at a ``tcp://`` / ``tls://`` scheduler address.

    A plain TCP connection is tried first (a refused port fails at once,
    an unreachable host after ``timeout`` seconds), so a typo does not hang
    for dask's default 30 s of retries. Other schemes (``inproc://``,
    ``ucx://``) are left to dask.

    Raises
    ------
    InputError
        One line naming ``name``, the address and the reason.
    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise InputError(f"{ref(name)} {address}: expected an address like tcp://host:8786")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, (TimeoutError, socket.timeout)):
            reason = f"no answer within {timeout:g} s"
        raise InputError(
            f"{ref(name)} {address}: cannot reach the dask scheduler ({reason})"
        ) from None


def _call_many(fn: Callable, items: list, kwargs: dict) -> list:
    """Run ``fn`` on several items in one task (on a worker)."""
    return [fn(item, **kwargs) for item in items]


def _take(it: Iterator, k: int) -> list:
    out = []
    for _ in range(k):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def run_tasks(
    fn: Callable[..., Any],
    items: Iterable[Any],
    *,
    on_result: Callable[[Any], None],
    kwargs: dict[str, Any] | None = None,
    scheduler: Any = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    per_task: int | None = None,
    progress: Progress | None = None,
    worker_env: dict[str, str] | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    scheduler_name: str = "scheduler",
) -> RunInfo:
    """Compute ``fn(item, **kwargs)`` for every item; pass each result to ``on_result``.

    Parameters
    ----------
    fn : callable
        A pure, importable function (workers unpickle it by reference when
        it is defined in a module, by value otherwise).
    items : iterable
        One task argument per item; consumed lazily (never all in flight).
    on_result : callable
        Called in the calling process with each result, in completion order.
        It runs before the next result is fetched, so it may write files.
    kwargs : dict, optional
        Keyword arguments passed to every call.
    scheduler : None, "local", "inline", str address or distributed.Client
        ``None``/``"local"``: a new LocalCluster of ``workers`` processes
        (closed afterwards); ``"inline"``: compute here, one item at a time;
        ``"tcp://host:port"``: connect to a running scheduler (checked with
        :func:`check_scheduler_address` first); a ``Client``: use it.
    workers, threads_per_worker : int
        Local cluster size (see :func:`cap_workers`).
    per_task : int, optional
        Items per task (default: 1 to 4, so that every worker gets several
        tasks).
    progress : Progress, optional
        Cancellation is checked while waiting; the runner does not count
        steps (``on_result`` does, in its own units).
    worker_env : dict, optional
        Environment of local worker processes (default :data:`WORKER_ENV`).
    connect_timeout : float
        Seconds to wait for a remote scheduler.
    scheduler_name : str
        The parameter's name for error messages.

    Returns
    -------
    RunInfo

    Raises
    ------
    Cancelled
        When ``progress`` was cancelled; pending tasks are cancelled and the
        results already passed to ``on_result`` stay done.
    InputError
        A scheduler address that cannot be reached.
    """
    progress = as_progress(progress)
    kwargs = dict(kwargs or {})
    t0 = time.perf_counter()

    if scheduler == "inline":
        count = 0
        for item in items:
            progress.check()
            on_result(fn(item, **kwargs))
            count += 1
        return RunInfo("inline", 1, count, time.perf_counter() - t0)

    pending_items = list(items)
    if not pending_items:
        return RunInfo("none", 0, 0, 0.0)

    if isinstance(scheduler, str) and scheduler not in ("local",):
        check_scheduler_address(scheduler, connect_timeout, scheduler_name)

    try:  # the `distributed` extra; without it a local run computes here, one by one
        from distributed import Client, LocalCluster, wait
    except ImportError:
        if scheduler is None or scheduler == "local":
            info = run_tasks(
                fn,
                pending_items,
                on_result=on_result,
                kwargs=kwargs,
                scheduler="inline",
                progress=progress,
            )
            return RunInfo(NO_DISTRIBUTED, 1, info.tasks, time.perf_counter() - t0)
        raise InputError(
            f"{ref(scheduler_name)} {scheduler}: connecting to a dask scheduler needs the "
            'distributed package: pip install "napari-interfaces[distributed]"'
        ) from None
    import dask

    cluster = None
    own_client = False
    if scheduler is None or scheduler == "local":
        nw = cap_workers(workers, threads_per_worker)
        env = WORKER_ENV if worker_env is None else worker_env
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            cluster = LocalCluster(
                n_workers=nw,
                threads_per_worker=int(threads_per_worker),
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
        client = Client(cluster)
        own_client = True
        label = f"LocalCluster({nw}x{int(threads_per_worker)})"
    elif isinstance(scheduler, str):
        try:
            client = Client(scheduler, timeout=f"{connect_timeout}s")
        except Exception as exc:  # whatever answered there is not a usable scheduler
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise InputError(
                f"{ref(scheduler_name)} {scheduler}: no dask scheduler answered ({reason})"
            ) from None
        own_client = True
        nw = len(client.scheduler_info().get("workers", {})) or 1
        label = scheduler
    else:
        client = scheduler
        nw = len(client.scheduler_info().get("workers", {})) or 1
        label = "client"

    try:
        nthreads = sum(client.nthreads().values()) or nw
        if per_task is None:
            per_task = max(1, min(4, len(pending_items) // (4 * nthreads)))
        it = iter(pending_items)
        in_flight: set = set()

        def submit() -> None:
            chunk = _take(it, per_task)
            if chunk:
                in_flight.add(client.submit(_call_many, fn, chunk, kwargs, pure=False))

        try:
            for _ in range(2 * nthreads):
                submit()
            while in_flight:
                progress.check()
                try:
                    done, _ = wait(list(in_flight), timeout=0.5, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    continue
                for fut in done:
                    in_flight.discard(fut)
                    results = fut.result()
                    fut.release()
                    for r in results:
                        on_result(r)
                    progress.check()
                    submit()
        except BaseException:
            for fut in in_flight:
                fut.cancel()
            raise
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    return RunInfo(label, nw, len(pending_items), time.perf_counter() - t0)
