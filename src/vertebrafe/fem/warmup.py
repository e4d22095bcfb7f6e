"""Compile (or load from numba's cache) every numba kernel of the FE core in this process.

The kernels are compiled with ``cache=True``: the first process on a machine compiles them (tens of
seconds on a 2-core machine), later processes load the cached machine code (well under a second). A
study calls :func:`warm_up` in its parent process before it starts worker processes, so that the
workers load the cache instead of compiling the same kernels side by side (``vertebrafe warmup`` does
the same on its own, for example after an install). A study whose cases all solve directly does not
compile the AMG kernels (a fifth of the compile time: 35.8 s instead of 45.2 s of CPU); a case that
does use AMG compiles them on first use.

On an empty cache with more than one CPU a second process compiles the Gauss-point field kernels (about
a fifth of the compile time, and the per-element kernels they share with the assembly) while this one
compiles the sparsity-pattern, assembly and solver kernels; this process then loads the field kernels
from the cache. The compilation that the study waits for is then this process's share. This process
reaches the assembly kernel before the helper has compiled the per-element kernels (it starts a few
seconds later, when this process first compiles), so it waits for them there instead of compiling them a
second time (2-6 s of CPU; at most until the helper ends).

Study workers run on one numba thread each, so a study with several workers warms up with ``threads=1``:
the kernels with a serial twin (:mod:`vertebrafe.fem.jit`: the assembly, the Gauss-point fields and the
kernels of AMG-CG) are compiled without ``parallel=True``, whose compilation costs several times more (the
warm-up's own share without AMG 20.6 against 29.5 s of CPU, the helper's 14.1 against 19.8, both measured
side by side under load 14; the AMG-CG kernels about 26 against 66 s, :mod:`vertebrafe.fem.jit`).
``vertebrafe warmup`` compiles both builds.
"""
import time

import numpy as np

from .jit import numba_threads


def _bar(soft=5.0):
    """A small bar that reaches every code path that calls a kernel: per-cell formulations (full, B-bar,
    incompatible modes), a rigid plate, two materials, 1000 and ``soft`` MPa: 200x apart by default
    (material-aware AMG with the finest-level Chebyshev smoother of strong contrasts,
    ``solvers.STRONG_CONTRAST``, and 3x3 and 6x6 block smoothers on three AMG levels when solved with
    ``"amg"``); a ``soft`` within that contrast takes the weak-contrast V-cycle (a vertebra alone between
    plates), whose finest level computes its residual with the single-precision matrix.

    The bar's nodes are moved off the grid (by up to 1 % of a cell) so that its cells, like those of an
    anatomical mesh, are not translates of one another: the fast path for meshes of identical cells
    (:func:`assembly.reference_stiffness`, image voxels) is compiled on its first use instead, which
    spares every anatomical study about a quarter of the compile time."""
    from ..mesh import box
    from .model import Model

    mesh = box((6.0, 6.0, 100.0), (6, 6, 100))          # 14 559 unknowns: three AMG levels
    mesh.points[:] += np.random.default_rng(0).uniform(-0.01, 0.01, mesh.points.shape)
    m = mesh.n_cells
    z = mesh.points[mesh.cells].mean(axis=1)[:, 2]
    form = np.where(z < 33.0, "incompatible", np.where(z < 67.0, "bbar", "full"))
    E = np.where(z < 50.0, 1000.0, soft)
    model = Model(mesh, E=E, nu=np.full(m, 0.3), formulation=form)
    model.fix(mesh.node_sets["zmin"])
    model.rigid_plate(mesh.node_sets["zmax"]).load(force=(1.0, 0.0, -10.0), moment=(5.0, 0.0, 0.0))
    return model


def _fields_of(model):
    """The Gauss-point field kernels, on a zero displacement of ``model`` (no assembly, no solve)."""
    from .solution import Solution
    return Solution(model, np.zeros((model.mesh.n_points, 3)), np.zeros((len(model.plates), 6)), {}).cell_stress


def _helper(threads=None):
    """Start ``_fields_of(_bar())`` on ``threads`` numba threads in a second Python process (same numba
    cache); returns the process."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # holds vertebrafe/
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.Popen([sys.executable, "-c", "from vertebrafe.fem.warmup import _bar, _fields_of\n"
                             "from vertebrafe.fem.jit import numba_threads\n"
                             f"with numba_threads({threads!r}):\n    _fields_of(_bar())"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _await_cached(dispatcher, since, helper, limit_s=300.0):
    """Wait until numba's cache holds ``dispatcher``'s kernel saved after ``since`` (a ``time.time()``), or
    the process ``helper`` that compiles it has ended (at most ``limit_s``). The index file is written
    after the machine code, so a fresh one can be loaded."""
    import os

    try:
        index = dispatcher._cache._cache_file._index_path
    except AttributeError:              # another numba cache layout: compile it here if it is not there
        return
    end = time.monotonic() + limit_s
    while helper.poll() is None and time.monotonic() < end:
        try:
            if os.stat(index).st_mtime >= since:
                return
        except OSError:
            pass
        time.sleep(0.05)


def warm_up(say=print, amg=True, parallel=None, threads=None):
    """Compile or load the FE kernels; returns the seconds it took. ``amg``: also the kernels of AMG-CG
    (:func:`~vertebrafe.fem.solvers.choose` tells whether a model solves with it); without them the bar is
    solved by the direct solver. ``parallel`` (default: more than one CPU): on an empty cache, compile the
    Gauss-point field kernels in a second process meanwhile. ``threads``: the numba threads of the
    processes that will run the kernels (default: this process's); with 1, as in study workers, the
    serial builds of the kernels that have both (:mod:`vertebrafe.fem.jit`) are compiled, else the
    parallel ones.

    ``say(message)`` is called when numba starts compiling a kernel that is not in its cache (once) and
    when the warm-up is done after compiling; a warm cache stays silent. ``say=None`` is always silent.
    """
    import os

    from numba.core import event

    from .assembly import assemble
    from .kernels import element_stiffness

    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1
    compiled = []
    helpers = []
    since = time.time()

    class Notice(event.Listener):
        def on_start(self, ev):
            if not compiled:
                if say is not None:
                    say("compiling the numba kernels (once per install; later runs load them from numba's "
                        "cache) ...")
                if parallel:
                    helpers.append(_helper(threads))
            compiled.append(ev)
            if helpers and ev.data["dispatcher"] in assemble.dispatchers:
                # the per-element kernels, which the helper compiles first (for the fields), are loaded
                # from its cache rather than compiled here a second time
                _await_cached(element_stiffness, since, helpers[0])

        def on_end(self, ev):
            pass

    t0 = time.perf_counter()
    with event.install_listener("numba:compile", Notice()), numba_threads(threads):
        sol = _bar().solve(solver="amg" if amg else "direct")
        if amg:
            _bar(soft=500.0).solve(solver="amg")
        for helper in helpers:
            helper.wait()
        _ = sol.cell_stress
    elapsed = time.perf_counter() - t0
    if compiled and say is not None:
        say(f"numba kernels compiled in {elapsed:.0f} s")
    return elapsed
