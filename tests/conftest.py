"""Test-run settings shared by every test folder.

Under pytest-xdist (``-n 2``: one worker process per core, README) each worker runs numba on one thread and
limits OpenBLAS (numpy's and scipy's BLAS) to one thread, as a study worker does (docs/cases.md): two
workers that each wake a second thread ask for four threads on two busy cores, and a call then waits for a
core. OpenBLAS: four test files (test_multiple_loads, fem/test_active_set_direct, anatomy/test_posterior,
test_loads) under ``-n 2 --dist loadfile`` at a load of 1-2.5 (the shared machine otherwise idle): 216 s of
CPU and 116 s of wall time with the default threads, 135 s and 73 s with this limit. numba: on one thread a
worker also calls and compiles the serial twins of the assembly, Gauss-point and AMG-CG kernels
(:mod:`vertebrafe.fem.jit`), whose compilation costs a third to a quarter of the parallel builds'; the
tests of the parallel kernels set the thread count they check themselves (``numba.set_num_threads``, at
most ``numba.config.NUMBA_NUM_THREADS``). MKL (PARDISO) keeps its threads: with MKL on one thread
fem/test_active_set_direct.py::test_vertebrae_in_the_deflation_save_cg_iterations counts 10 CG iterations
instead of 12 and fails. The limits are set in the worker itself (threadpoolctl, ``numba.set_num_threads``),
not through the environment, so that processes the tests start keep their defaults (a study's spawned
workers must set their own limit: tests/test_study.py checks it). A run without xdist keeps every
library's default."""
import os
import sys

import pytest

#: ``len(sys.modules)`` when the BLAS libraries were last limited (an import can load another one).
_LIMITED = [-1]


def _one_blas_thread():
    if os.environ.get("PYTEST_XDIST_WORKER") and len(sys.modules) != _LIMITED[0]:
        from threadpoolctl import ThreadpoolController
        ThreadpoolController().select(internal_api="openblas").limit(limits=1)
        _LIMITED[0] = len(sys.modules)


def pytest_configure(config):
    """numba on one thread in an xdist worker (the thread that runs the tests; a test that sets another count
    restores it)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import numba
        numba.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a test's fixtures, and (as ``pytest_runtest_call``) again before its body: either may have
    imported a library that loads another BLAS."""
    _one_blas_thread()


pytest_runtest_call = pytest_runtest_setup
