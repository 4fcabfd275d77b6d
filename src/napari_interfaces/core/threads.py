"""Thread limits shared by the engine.

:func:`one_blas_thread` runs NumPy's (and SciPy's) BLAS on one thread for a
block of small products: their sums are then the same on every run (a
classifier refitted from its saved rows is the identical one), and a busy
second core does not stall OpenBLAS's threads (a 59 x 59 ``eigh`` took
47 ms instead of 2 ms on the 2-core benchmark machine, the same result).
"""

from __future__ import annotations

__all__ = ["one_blas_thread"]


def one_blas_thread():
    """A context manager: BLAS on one thread inside it (``threadpoolctl``), restored after."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")
