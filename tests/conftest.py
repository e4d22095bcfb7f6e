"""Test-run settings shared by every test folder.

Under pytest-xdist (``-n 2``: one worker process per core, README) each worker limits its BLAS libraries
(OpenBLAS, MKL with PARDISO) to one thread, as a study worker does (docs/cases.md): two workers that each
wake a second BLAS thread ask for four threads on two busy cores, and a BLAS call then waits for a core.
The wait shows as CPU time. On a shared 2-core machine at a load of 18, L1's default kyphoplasty at 4 mm
took 8.6 s of CPU with the default threads and 1.3 s with one. Clinical test files under ``-n 2
--dist loadfile``, one thread against the default: augmentation, strength and interface layer 72 against
107 s of CPU, 241 against 288 s of wall time (one thread first, loads 12-15); the same and mechanics 79
against 106 s of CPU, 266 against 380 s of wall time (default first, loads 14-19). The limit is set in the
worker itself (threadpoolctl), not through the environment, so that processes the tests start keep their
defaults (a study's spawned workers must set their own limit: tests/test_study.py checks it). numba keeps
its threads: the tests of the parallel kernels need them. A run without xdist keeps every library's
default."""
import os
import sys

import pytest

#: ``len(sys.modules)`` when the BLAS libraries were last limited (an import can load another one).
_LIMITED = [-1]


def _one_blas_thread():
    if os.environ.get("PYTEST_XDIST_WORKER") and len(sys.modules) != _LIMITED[0]:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1, user_api="blas")
        _LIMITED[0] = len(sys.modules)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a test's fixtures, and (as ``pytest_runtest_call``) again before its body: either may have
    imported a library that loads another BLAS."""
    _one_blas_thread()


pytest_runtest_call = pytest_runtest_setup
