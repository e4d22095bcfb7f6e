"""Numba kernels with a serial twin: one Python function compiled with and without ``parallel=True``.

A kernel whose loop over cells or block rows is a ``prange`` runs on all numba threads, but its
``parallel=True`` compilation costs three to four times that of the same function compiled as a plain loop
(``assembly.assemble`` 9.5 against 2.5 s of CPU of its own, ``solution.gauss_fields`` 8.9 against 2.3 s;
the kernels of AMG-CG in :mod:`~vertebrafe.fem.sparse_kernels`, :mod:`~vertebrafe.fem.relaxation` and
:mod:`~vertebrafe.fem.multigrid` together about 66 against 26 s; benchmarks/README.md). Study workers and
the test suite's processes run with one numba thread each, so they gain nothing from the parallel build.
:func:`threaded` compiles both from one source and calls the serial twin whenever numba runs on one
thread, so a process that never uses more (a study, its warm-up) never compiles the parallel build. Both
run the loop body for every index in the same order per index, so their results are equal bit for bit
(each index writes its own outputs).
"""
import contextlib
import functools
import types

import numba
from numba import njit


def _renamed(func, suffix):
    """A copy of the plain Python function ``func`` named ``<name><suffix>``: numba's cache files are named
    after a function's qualified name, so the twin gets files of its own."""
    twin = types.FunctionType(func.__code__, func.__globals__, func.__name__ + suffix, func.__defaults__,
                              func.__closure__)
    twin.__qualname__ = func.__qualname__ + suffix
    twin.__module__ = func.__module__
    twin.__doc__ = func.__doc__
    return twin


class Threaded:
    """A numba kernel compiled twice (both ``cache=True``): :attr:`parallel` with ``parallel=True`` and
    :attr:`serial` without (its ``prange`` loops are plain loops). Calling it runs :attr:`serial` when
    numba runs on one thread (``numba.get_num_threads() == 1``), else :attr:`parallel`; each is compiled
    on its first call."""

    def __init__(self, func):
        self.parallel = njit(parallel=True, cache=True)(func)
        self.serial = njit(cache=True)(_renamed(func, "_serial"))
        functools.update_wrapper(self, func)

    @property
    def dispatchers(self):
        """Both builds (numba dispatchers)."""
        return self.parallel, self.serial

    def __call__(self, *args):
        return (self.serial if numba.get_num_threads() == 1 else self.parallel)(*args)


def threaded(func):
    """Decorator: ``func`` as a :class:`Threaded` kernel."""
    return Threaded(func)


@contextlib.contextmanager
def numba_threads(threads):
    """Numba runs on ``threads`` threads inside the block (clipped to 1 .. ``NUMBA_NUM_THREADS``; None:
    unchanged), and on as many as before after it."""
    if threads is None:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)
