"""BLAS thread control: small products run on one thread (more threads only slow them)."""
import sys

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_BLAS = [None, -1]       # a ThreadpoolController and the len(sys.modules) it was made at


def one_blas_thread():
    """Context manager: BLAS libraries on one thread (single-vector work, see :meth:`vertebrafe.fem.solvers.Prepared.solve`).

    Finding the loaded BLAS libraries scans every shared library of the process: about 1 ms per call
    with numpy alone, 7 ms once VTK is loaded (pyvista), and the solvers enter this context hundreds of
    times per load. The scan is kept and repeated only after a module was imported (a new import can
    load a BLAS, e.g. MKL with PARDISO)."""
    if _BLAS[0] is None or _BLAS[1] != len(sys.modules):
        _BLAS[:] = [ThreadpoolController(), len(sys.modules)]
    return _BLAS[0].limit(limits=1, user_api="blas")
