"""The warm-up compiles or loads every numba kernel of the FE core, so study workers compile nothing."""
import dataclasses
import inspect
import os
import subprocess
import sys

import pytest

import numba
import numpy as np

from numba.core.registry import CPUDispatcher

from vertebrafe import cli
from vertebrafe.fem import active_set, assembly, model, multigrid, relaxation, solution, solvers, sparse_kernels
from vertebrafe.fem.jit import Threaded
from vertebrafe.fem.warmup import warm_up


MODULES = (active_set, assembly, model, multigrid, relaxation, solution, solvers, sparse_kernels)
#: The fast path of meshes of identical cells (image voxels): compiled on its first use, not by the
#: warm-up that studies of anatomical meshes pay for.
VOXEL_ONLY = {"vertebrafe.fem.assembly._reference_matrices"}


def _names(code):
    """Global and attribute names used by a code object and the code objects nested in it."""
    yield from code.co_names
    for const in code.co_consts:
        if inspect.iscode(const):
            yield from _names(const)


def _functions(mod):
    """Plain Python functions of ``mod``: module functions, methods and (cached) properties."""
    for _, obj in inspect.getmembers(mod):
        members = vars(obj).values() if inspect.isclass(obj) and obj.__module__ == mod.__name__ else [obj]
        for m in members:
            f = getattr(m, "fget", None) or getattr(m, "func", None) or m
            f = getattr(f, "__func__", f)
            if inspect.isfunction(f) and f.__module__ == mod.__name__:
                yield f


def _entry_points():
    """The numba kernels that plain Python code of the FE core calls (kernels called only from other
    kernels are compiled into their callers and need no signature of their own); of a kernel with a serial
    twin, the build that this process calls (:mod:`vertebrafe.fem.jit`)."""
    used = {name for mod in MODULES for f in _functions(mod) for name in _names(f.__code__)}
    for mod in (assembly, relaxation, solution, sparse_kernels):  # fem.kernels: per-element kernels of these
        for name, obj in inspect.getmembers(mod):
            if isinstance(obj, Threaded):
                obj = obj.serial if numba.get_num_threads() == 1 else obj.parallel
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == mod.__name__ and name in used:
                yield f"{mod.__name__}.{name}", obj


def test_warm_up_reaches_every_kernel():
    messages = []
    elapsed = warm_up(say=messages.append)
    assert elapsed > 0
    entry = dict(_entry_points())
    assert {"vertebrafe.fem.assembly.assemble", "vertebrafe.fem.relaxation.block_sweeps",
            "vertebrafe.fem.sparse_kernels._product3", "vertebrafe.fem.sparse_kernels._transposed_product"} <= set(entry)
    missing = [name for name, d in entry.items() if not d.signatures and name not in VOXEL_ONLY]
    assert not missing, f"kernels not compiled by the warm-up: {missing}"
    # a second call finds everything compiled in this process and says nothing
    messages.clear()
    warm_up(say=messages.append)
    assert messages == []


def test_a_segment_solve_after_the_warm_up_compiles_nothing_new():
    """Study workers solve segments; a kernel signature they need beyond the warm-up's (another dtype,
    layout or read-only flag) would be compiled in every worker again."""
    import vertebrafe as vf
    from vertebrafe.simulate import simulate

    warm_up(say=None)
    before = {name: len(d.signatures) for name, d in _entry_points()}
    seg = vf.segment(["L4", "L5"], bmd=100.0, element_size=6.0)
    simulate(seg, "relaxed_standing", solver="amg")
    simulate(seg, "flexion_moment", solver="direct", formulation=np.where(np.arange(seg.mesh.n_cells) % 2 == 0, "bbar", "incompatible"))
    after = {name: len(d.signatures) for name, d in _entry_points()}
    assert after == before


def test_warmup_command(capsys):
    assert cli.main(["warmup"]) == 0
    assert "numba kernels ready" in capsys.readouterr().out


def test_the_voxel_fast_path_compiles_on_first_use_and_matches_the_general_path():
    """A mesh of identical cells takes the reference-stiffness path; the same mesh moved off the grid by
    1e-9 of a cell takes the general one: the solutions agree to the perturbation's order."""
    from vertebrafe import box
    from vertebrafe.fem.model import Model

    def tip(mesh):
        model = Model(mesh, E=np.full(mesh.n_cells, 1000.0), nu=np.full(mesh.n_cells, 0.3))
        model.fix(mesh.node_sets["zmin"])
        model.rigid_plate(mesh.node_sets["zmax"]).load(force=(0.0, 0.0, -10.0))
        return model.solve(solver="direct").displacement
    grid = box((2.0, 2.0, 6.0), (2, 2, 6))
    moved = box((2.0, 2.0, 6.0), (2, 2, 6))
    moved.points[:] += np.random.default_rng(1).uniform(-1e-9, 1e-9, moved.points.shape)
    u_grid, u_moved = tip(grid), tip(moved)
    assert dict(_entry_points())["vertebrafe.fem.assembly._reference_matrices"].signatures
    np.testing.assert_allclose(u_grid, u_moved, rtol=0, atol=1e-6 * np.abs(u_grid).max())


def test_warm_up_without_amg_compiles_no_amg_kernel():
    """A study whose cases all solve directly warms up without the AMG-CG kernels, and for one-thread
    workers only the serial builds of the kernels that have both (checked in a fresh process, where only
    the warm-up has run: loading from numba's cache counts as compiling here)."""
    code = ("from vertebrafe.fem.warmup import warm_up\n"
            "from vertebrafe.fem import assembly, relaxation, solution, sparse_kernels\n"
            "warm_up(say=None, amg=False, threads=1)\n"
            "print(bool(assembly.assemble.serial.signatures), bool(solution.gauss_fields.serial.signatures),\n"
            "      bool(assembly.assemble.parallel.signatures), bool(solution.gauss_fields.parallel.signatures),\n"
            "      *(bool(d.signatures) for d in relaxation.block_sweeps.dispatchers + sparse_kernels._product3.dispatchers))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False", "False"] + ["False"] * 4     # no AMG kernel, either build


def test_a_study_asks_for_amg_kernels_only_where_a_case_may_use_amg(monkeypatch):
    from vertebrafe import study as vs
    from vertebrafe.fem import solvers
    from vertebrafe.study.run import _uses_amg
    cases = vs.load_study(os.path.join(os.path.dirname(__file__), "..", "..", "cases", "adjacent-risk.toml")).cases
    assert all(sc.case.solver.solver == "auto" for sc in cases)
    monkeypatch.setattr(solvers, "direct_max_dofs", lambda: solvers.DIRECT_MAX_DOFS)     # a sparse Cholesky
    assert not _uses_amg(cases)
    amg = [dataclasses.replace(cases[0], case=dataclasses.replace(
        cases[0].case, solver=dataclasses.replace(cases[0].case.solver, solver="amg")))]
    assert _uses_amg(list(cases) + amg)
    monkeypatch.setattr(solvers, "direct_max_dofs", lambda: solvers.SUPERLU_MAX_DOFS)    # SuperLU only
    monkeypatch.setattr(solvers, "pardiso_available", lambda: False)
    assert _uses_amg(cases)


@pytest.mark.parametrize("pardiso", [True, False])
def test_a_study_of_fine_auto_segments_compiles_the_amg_kernels_before_its_workers(monkeypatch, pardiso):
    """"auto" leaves the direct solver for T12-L2 at 2 mm with PARDISO (127k unknowns, above
    ESTIMATE_MIN_DOFS) and at 1.5 mm with CHOLMOD alone (above DIRECT_MAX_DOFS): the study's warm-up must
    compile the AMG kernels then, and not at 3 mm (47k unknowns, the README main job)."""
    from vertebrafe import study as vs
    from vertebrafe.fem import solvers
    from vertebrafe.study.run import _uses_amg
    cases = vs.load_study(os.path.join(os.path.dirname(__file__), "..", "..", "cases", "adjacent-risk.toml")).cases
    monkeypatch.setattr(solvers, "pardiso_available", lambda: pardiso)
    monkeypatch.setattr(solvers, "direct_max_dofs", lambda: solvers.DIRECT_MAX_DOFS)

    def at(h):
        return [dataclasses.replace(sc, case=dataclasses.replace(
            sc.case, segment=dataclasses.replace(sc.case.segment, element_size=h))) for sc in cases]

    assert not _uses_amg(at(3.0))
    assert _uses_amg(at(1.5))
    if pardiso:
        assert _uses_amg(at(2.0))


def test_the_warm_up_helper_process_computes_the_fields():
    """The second process of a warm-up on an empty cache imports this vertebrafe and computes the bar's
    Gauss-point fields; here it finds the kernels cached and must end cleanly."""
    from vertebrafe.fem import warmup
    warm_up(say=None, amg=False)
    assert warmup._helper().wait(timeout=600) == 0


def test_the_assembly_waits_for_the_helpers_element_kernels_in_the_cache(tmp_path):
    """The warm-up's process waits, before compiling the assembly, until the helper has saved the
    per-element kernels (their index file newer than the warm-up's start) or has ended; a stale index
    does not count."""
    import time
    from types import SimpleNamespace

    from vertebrafe.fem.kernels import element_stiffness
    from vertebrafe.fem.warmup import _await_cached

    assert element_stiffness._cache._cache_file._index_path.endswith(".nbi")     # the numba layout it reads
    index = tmp_path / "kernel.nbi"
    fake = SimpleNamespace(_cache=SimpleNamespace(_cache_file=SimpleNamespace(_index_path=str(index))))
    index.write_text("stale")
    since = time.time() + 0.5
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"])
    t0 = time.monotonic()
    _await_cached(fake, since, helper)                            # stale index: waits for the helper's end
    assert helper.poll() is not None and time.monotonic() - t0 > 0.5
    os.utime(index, (since + 1.0, since + 1.0))
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30.0)"])
    t0 = time.monotonic()
    _await_cached(fake, since, helper)                            # fresh index: at once
    assert time.monotonic() - t0 < 5.0 and helper.poll() is None
    helper.kill()
    helper.wait()
