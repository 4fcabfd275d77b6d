"""Thread limits shared by the engine.

:func:`one_blas_thread` runs NumPy's (and SciPy's) BLAS on one thread for a
block of small products: their sums are then the same on every run (a
classifier refitted from its saved rows is the identical one), and a busy
second core does not stall OpenBLAS's threads (a 59 x 59 ``eigh`` took
47 ms instead of 2 ms on the 2-core benchmark machine, the same result).
:func:`beside` runs two pieces of work side by side under that limit.
"""

from __future__ import annotations

__all__ = ["beside", "one_blas_thread"]


def one_blas_thread():
    """A context manager: BLAS on one thread inside it (``threadpoolctl``), restored after."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def beside(side, main, overlap: bool = True):
    """``side()`` in a worker thread while ``main()`` runs here; returns ``side()``'s result.

    Both run under one BLAS thread (:func:`one_blas_thread`, entered here so that
    the worker's own limits start and end inside it: ``threadpoolctl``'s limits
    are the process's). An exception in the worker is raised here. With
    ``overlap`` False: ``main()`` then ``side()`` (the same values).
    """
    import threading

    if not overlap:
        main()
        return side()
    box: list = []

    def run():
        try:
            box.append((True, side()))
        except BaseException as exc:  # re-raised in the caller's thread
            box.append((False, exc))

    with one_blas_thread():
        worker = threading.Thread(target=run, name="napari-interfaces-side", daemon=True)
        worker.start()
        try:
            main()
        finally:
            worker.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value
