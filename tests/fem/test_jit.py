"""Kernels with a serial twin (:mod:`vertebrafe.fem.jit`): one thread runs the serial build, which gives the
parallel build's results on one thread bit for bit."""
import numba
import numpy as np

from vertebrafe.fem import assembly, solution
from vertebrafe.fem.jit import Threaded, numba_threads
from vertebrafe.fem.warmup import _bar


def _stiffness_and_fields():
    model = _bar()                       # three formulations, two materials, a rigid plate
    K, _, _ = model.stiffness()
    u = np.random.default_rng(2).normal(size=(model.mesh.n_points, 3)) * 1e-3
    sol = solution.Solution(model, u, np.zeros((len(model.plates), 6)), {})
    return K.data.copy(), sol.stress.copy(), sol.cell_volume.copy(), sol.internal_forces.copy()


def test_one_thread_runs_the_serial_twin_with_the_parallel_build_results(monkeypatch):
    assert isinstance(assembly.assemble, Threaded) and isinstance(solution.gauss_fields, Threaded)
    with numba_threads(1):
        assert numba.get_num_threads() == 1
        serial = _stiffness_and_fields()
        monkeypatch.setattr(Threaded, "__call__", lambda self, *args: self.parallel(*args))
        parallel = _stiffness_and_fields()
    assert assembly.assemble.serial.signatures and assembly.assemble.parallel.signatures
    for a, b in zip(serial, parallel):
        assert np.array_equal(a, b)


def test_the_twin_has_its_own_cache_name():
    """numba names cache files after the qualified name: the two builds must not share them."""
    assert assembly.assemble.serial.py_func.__qualname__ == "assemble_serial"
    assert assembly.assemble.parallel.py_func.__qualname__ == "assemble"
    assert assembly.assemble.__doc__ == assembly.assemble.parallel.py_func.__doc__
