#!/usr/bin/env python
"""Core benchmark: vertebrafe against scikit-fem + pyamg and CalculiX on a stiff inclusion in a soft box.

Problem (spec, section 9): a box 40 x 30 x 25 mm on a structured hex8 grid; an ellipsoidal
inclusion centred in the box with semi-axes (10, 8, 6) mm, E = 3000 MPa (like PMMA), in a
matrix of E = 100 MPa (like osteoporotic cancellous bone), nu = 0.3 in both, assigned by cell
centroid. Nodes at z = 0 are fixed in x, y, z; nodes at z = 25 mm have uz = -0.1 mm
prescribed (x and y free). Solved to a relative residual of 1e-8 with CG + smoothed
aggregation AMG with the six rigid-body modes as near-nullspace.

Every (size, code) pair runs in a fresh subprocess so that the peak resident memory
(``ru_maxrss``) is that of one solve. Before timing, vertebrafe solves a tiny model in the
same process, so that numba compilation or cache loading is not counted.

Usage::

    python benchmarks/bench_core.py --sizes small          # 10k elements
    python benchmarks/bench_core.py --sizes all            # 10k, 50k, 150k, 400k
    python benchmarks/bench_core.py --sizes 50k,1M --no-skfem --no-calculix
    python benchmarks/bench_core.py --check-import         # import + small solve, warm cache
    python benchmarks/bench_core.py --sizes 400k --assembly bbar,incompatible --repeats 5
    python benchmarks/bench_core.py --sizes 1k --no-skfem --threads 1    # smoke run (tests/test_benchmarks.py)

Units: mm, N, MPa; times in s; memory in MB (10^6 bytes) and bytes per DOF.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

LENGTHS = (40.0, 30.0, 25.0)  # mm
CENTER = (20.0, 15.0, 12.5)  # mm
SEMI_AXES = (10.0, 8.0, 6.0)  # mm
E_INCLUSION = 3000.0  # MPa
E_MATRIX = 100.0  # MPa
NU = 0.3
UZ_TOP = -0.1  # mm
RTOL = 1e-8

NAMED_SIZES = {"10k": 10_000, "50k": 50_000, "150k": 150_000, "400k": 400_000, "1M": 1_000_000}
SIZE_SETS = {"small": ["10k"], "all": ["10k", "50k", "150k", "400k"],
             "full": ["10k", "50k", "150k", "400k", "1M"]}

RESULT_TAG = "BENCH_RESULT "


# --------------------------------------------------------------------------- problem
def grid_shape(n_elements: int) -> tuple[int, int, int]:
    """Cells per axis (nx, ny, nz) of a near-cubic grid on the box with about ``n_elements`` cells."""
    h = (LENGTHS[0] * LENGTHS[1] * LENGTHS[2] / n_elements) ** (1.0 / 3.0)
    return tuple(max(1, round(length / h)) for length in LENGTHS)  # type: ignore[return-value]


def parse_size(token: str) -> int:
    """'10k' -> 10000, '1M' -> 1000000, '25000' -> 25000."""
    t = token.strip()
    if t in NAMED_SIZES:
        return NAMED_SIZES[t]
    scale = 1
    if t[-1:] in ("k", "K"):
        scale, t = 1_000, t[:-1]
    elif t[-1:] in ("m", "M"):
        scale, t = 1_000_000, t[:-1]
    value = int(float(t) * scale)
    if value < 1:
        raise argparse.ArgumentTypeError(f"size {token!r} must be a positive number of elements")
    return value


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def inclusion_modulus(centroids):
    """Young's modulus per cell (m,) MPa from cell centroids (m, 3) mm."""
    import numpy as np

    r = ((centroids - np.asarray(CENTER)) / np.asarray(SEMI_AXES)) ** 2
    return np.where(r.sum(axis=1) <= 1.0, E_INCLUSION, E_MATRIX)


def current_rss_bytes() -> int:
    """Resident set of this process now, bytes (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """High-water mark of the resident set of this process, bytes."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# --------------------------------------------------------------------------- vertebrafe
#: Grid of the warm-up solve: large enough (20,349 DOFs) for an AMG hierarchy of three levels, so that the
#: smoother, cycle and set-up kernels of every level (3x3 blocks on the finest, 6x6 below it, where the
#: prolongator's spectral-radius estimate runs the general block product) are compiled or loaded from the
#: cache before any timing, not only assembly. With two levels the 6x6 products compiled inside the first
#: timed AMG set-up (3.5 s of it on a fresh clone).
WARMUP_SHAPE = (20, 18, 16)


def _vertebrafe_model(shape, formulation):
    import vertebrafe
    from vertebrafe.mesh import box

    Model = getattr(vertebrafe, "Model", None)
    if Model is None:  # before the top-level export exists
        from vertebrafe.fem.model import Model

    mesh = box(LENGTHS, shape, origin=(0.0, 0.0, 0.0))
    E = inclusion_modulus(mesh.cell_centers())
    model = Model(mesh, E=E, nu=NU, formulation=formulation)
    model.fix(mesh.node_sets["zmin"], "xyz")
    model.prescribe(mesh.node_sets["zmax"], "z", UZ_TOP)
    return mesh, model, E


def run_vertebrafe(shape, formulation="full", solver="amg") -> dict:
    """Solve the benchmark with vertebrafe; timings from ``sol.info``."""
    import numpy as np

    t0 = time.perf_counter()
    import vertebrafe  # noqa: F401

    t_import = time.perf_counter() - t0
    # warm-up on a tiny grid: numba compilation / cache loading is not part of the timings
    t0 = time.perf_counter()
    _, small, _ = _vertebrafe_model(WARMUP_SHAPE, formulation)
    small.solve(solver=solver, rtol=RTOL)
    t_warmup = time.perf_counter() - t0
    base_rss = current_rss_bytes()

    t0 = time.perf_counter()
    mesh, model, E = _vertebrafe_model(shape, formulation)
    t_setup_model = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    sol = model.solve(solver=solver, rtol=RTOL)
    t_solve_call, c_solve_call = time.perf_counter() - t0, time.process_time() - c0
    fz = float(sol.reaction(mesh.node_sets["zmax"])[2])
    info = dict(sol.info)
    u = np.asarray(sol.displacement)
    return {
        "code": "vertebrafe",
        "elements": int(mesh.n_cells),
        "dofs": int(3 * mesh.n_points),
        "inclusion_cells": int((E == E_INCLUSION).sum()),
        "formulation": formulation,
        "solver": solver,
        "import_time": t_import,
        "warmup_time": t_warmup,
        "base_rss": base_rss,
        "mesh_model_time": t_setup_model,
        "solve_call_time": t_solve_call,
        "solve_call_cpu": c_solve_call,
        "threads": __import__("numba").get_num_threads(),
        "pattern_time": info.get("pattern_time"),
        "assembly_time": info.get("assembly_time"),
        "constraints_time": info.get("constraints_time"),
        "setup_time": info.get("setup_time"),
        "solve_time": info.get("solve_time"),
        "iterations": info.get("iterations"),
        "residual": info.get("residual"),
        "fz": fz,
        "uz_min": float(u[:, 2].min()),
        "info": {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool))},
    }


def assembly_times(model, repeats: int) -> list[float]:
    """Seconds per stiffness assembly of ``model``, ``repeats`` times, without solving: the
    ``assembly_time`` of :meth:`vertebrafe.Model.stiffness` (allocating the BSR values and the assembly
    kernel, what ``Model.solve`` reports), with the sparsity pattern built once in a shared ``Setup``."""
    from vertebrafe.fem import Setup

    setup = Setup()
    times = []
    for _ in range(repeats):
        K, _, info = model.stiffness(setup)
        times.append(info["assembly_time"])
        del K
    return times


def compare_assembly(sizes, formulations, repeats) -> int:
    """Assembly time of each formulation on each size, interleaved ``repeats`` times (min and median)."""
    for f in formulations:  # numba compilation / cache loading is not timed
        _, small, _ = _vertebrafe_model((4, 3, 3), f)
        assembly_times(small, 1)
    print("| elements | DOFs | formulation | assembly s, min | median | runs | min / min of the first |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        shape = grid_shape(n)
        models = {f: _vertebrafe_model(shape, f)[1] for f in formulations}
        times = {f: [] for f in formulations}
        for _ in range(repeats):
            for f in formulations:
                times[f] += assembly_times(models[f], 1)
        base = min(times[formulations[0]])
        mesh = models[formulations[0]].mesh
        for f in formulations:
            print(f"| {mesh.n_cells:,} | {3 * mesh.n_points:,} | {f} | {min(times[f]):.3f} | "
                  f"{statistics.median(times[f]):.3f} | {repeats} | {min(times[f]) / base:.2f} |", flush=True)
    return 0


# --------------------------------------------------------------------------- scikit-fem
def run_skfem(shape) -> dict:
    """Solve the benchmark with scikit-fem (assembly) + pyamg (SA-AMG, rigid-body modes) + CG.

    2x2x2 Gauss integration (``intorder=2``) as in vertebrafe's hex8; per-element E from a
    piecewise-constant (ElementHex0) field; Dirichlet conditions by ``condense``.
    """
    import numpy as np
    import pyamg
    import skfem
    from skfem import (Basis, BilinearForm, ElementHex0, ElementHex1, ElementVector, MeshHex,
                       asm, condense)
    from skfem.helpers import ddot, div, sym_grad

    nx, ny, nz = shape
    t0 = time.perf_counter()
    mesh = MeshHex.init_tensor(np.linspace(0.0, LENGTHS[0], nx + 1),
                               np.linspace(0.0, LENGTHS[1], ny + 1),
                               np.linspace(0.0, LENGTHS[2], nz + 1))
    centroids = mesh.p[:, mesh.t].mean(axis=1).T
    E_cell = inclusion_modulus(centroids)
    t_mesh = time.perf_counter() - t0
    base_rss = current_rss_bytes()

    # unit-modulus Lame constants; the stiffness scales linearly with E at fixed nu
    lam1 = NU / ((1.0 + NU) * (1.0 - 2.0 * NU))
    mu1 = 1.0 / (2.0 * (1.0 + NU))

    @BilinearForm
    def elasticity(u, v, w):
        eu, ev = sym_grad(u), sym_grad(v)
        return w.E * (2.0 * mu1 * ddot(eu, ev) + lam1 * div(u) * div(v))

    t0 = time.perf_counter()
    basis = Basis(mesh, ElementVector(ElementHex1()), intorder=2)
    basis0 = basis.with_element(ElementHex0())
    E_dofs = np.zeros(basis0.N)
    E_dofs[basis0.element_dofs[0]] = E_cell
    E_field = basis0.interpolate(E_dofs)
    t_basis = time.perf_counter() - t0

    t0 = time.perf_counter()
    K = asm(elasticity, basis, E=E_field)
    t_asm = time.perf_counter() - t0

    t0 = time.perf_counter()
    z = mesh.p[2]
    bottom = np.flatnonzero(np.isclose(z, 0.0))
    top = np.flatnonzero(np.isclose(z, LENGTHS[2]))
    nodal = basis.nodal_dofs  # (3, n_nodes)
    D = np.concatenate([nodal[:, bottom].ravel(), nodal[2, top]])
    x = np.zeros(basis.N)
    x[nodal[2, top]] = UZ_TOP
    A, b, x, I = condense(K, np.zeros(basis.N), x=x, D=D)
    A = A.tocsr()
    t_condense = time.perf_counter() - t0

    t0 = time.perf_counter()
    p = mesh.p - mesh.p.mean(axis=1, keepdims=True)
    B = np.zeros((basis.N, 6))
    for i in range(3):
        B[nodal[i], i] = 1.0
    # rotations about x, y, z: (0, -z, y), (z, 0, -x), (-y, x, 0)
    B[nodal[1], 3], B[nodal[2], 3] = -p[2], p[1]
    B[nodal[0], 4], B[nodal[2], 4] = p[2], -p[0]
    B[nodal[0], 5], B[nodal[1], 5] = -p[1], p[0]
    ml = pyamg.smoothed_aggregation_solver(A, B=B[I], symmetry="hermitian")
    t_setup = time.perf_counter() - t0

    t0 = time.perf_counter()
    residuals: list[float] = []
    uI = ml.solve(b, tol=RTOL, accel="cg", maxiter=1000, residuals=residuals)
    t_solve = time.perf_counter() - t0
    residual = float(np.linalg.norm(b - A @ uI) / np.linalg.norm(b))
    x[I] = uI
    fz = float((K @ x)[nodal[2, top]].sum())
    return {
        "code": "skfem",
        "skfem_version": skfem.__version__,
        "elements": int(mesh.t.shape[1]),
        "dofs": int(basis.N),
        "inclusion_cells": int((E_cell == E_INCLUSION).sum()),
        "mesh_time": t_mesh,
        "base_rss": base_rss,
        "basis_time": t_basis,
        "asm_time": t_asm,
        "assembly_time": t_basis + t_asm,
        "constraints_time": t_condense,
        "setup_time": t_setup,
        "solve_time": t_solve,
        "iterations": len(residuals) - 1,
        "residual": residual,
        "fz": fz,
        "uz_min": float(x[nodal[2]].min()),
        "amg_levels": len(ml.levels),
    }


def run_calculix(shape, formulation="full", threads=None) -> dict:
    """Solve the same model with CalculiX: vertebrafe writes the deck (``Model.export``), ``ccx`` assembles
    and solves it (C3D8 = full integration, the SPOOLES direct solver), the reaction comes from its ``.dat``.

    ``ccx`` reports only its total time (input, assembly, factorisation and solve, output), timed here
    as the wall time of the ``ccx`` process; its peak memory is that of the child process. ``threads``:
    ccx's threads (None: one per core).
    """
    import resource
    import shutil
    import tempfile

    import numpy as np
    from vertebrafe.io.abaqus import read_dat, write_inp

    exe = shutil.which("ccx")
    if exe is None:
        raise RuntimeError("ccx (CalculiX) is not installed (Debian/Ubuntu: apt-get install calculix-ccx)")
    version = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout.split()[-1]
    mesh, model, E = _vertebrafe_model(shape, formulation)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_inp(model, os.path.join(tmp, "box.inp"), print_nodes="zmax", field_output=False)
        t_write = time.perf_counter() - t0
        threads = str(threads or os.cpu_count() or 1)
        env = dict(os.environ, OMP_NUM_THREADS=threads, CCX_NPROC_EQUATION_SOLVER=threads)
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "-i", "box"], cwd=tmp, capture_output=True, text=True, env=env)
        t_ccx = time.perf_counter() - t0
        if "Job finished" not in proc.stdout:
            raise RuntimeError("ccx failed: " + (proc.stdout + proc.stderr).strip().splitlines()[-1])
        res = read_dat(os.path.join(tmp, "box.dat"))
        deck_mb = os.path.getsize(os.path.join(tmp, "box.inp")) / 1e6
    top = mesh.node_sets["zmax"]
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "code": "calculix",
        "ccx_version": version,
        "elements": int(mesh.n_cells),
        "dofs": int(3 * mesh.n_points),
        "inclusion_cells": int((E == E_INCLUSION).sum()),
        "write_time": t_write,
        "deck_mb": deck_mb,
        "solve_time": t_ccx,
        "ccx_peak_rss": int(child if sys.platform == "darwin" else child * 1024),
        "fz": float(res["RF"][top, 2].sum()),
        "uz_min": float(np.min(res["U"][:, 2])),
    }


# --------------------------------------------------------------------------- harness
def worker(code: str, shape, formulation: str, solver: str, threads=None) -> int:
    if threads is not None:  # before the first kernel call: on one thread the serial twins (fem/jit.py) run
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        if code == "vertebrafe":
            result = run_vertebrafe(shape, formulation, solver)
        elif code == "calculix":
            result = run_calculix(shape, formulation, threads)
        else:
            result = run_skfem(shape)
        result["ok"] = True
    except Exception as exc:  # reported by the parent, one line per failure
        import traceback

        traceback.print_exc(file=sys.stderr)
        result = {"code": code, "ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    result["shape"] = list(shape)
    result["peak_rss"] = result.get("ccx_peak_rss") or peak_rss_bytes()  # calculix: the ccx process
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


def run_in_subprocess(code, shape, formulation, solver, timeout, verbose, threads=None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", code,
           "--shape", ",".join(map(str, shape)), "--formulation", formulation, "--solver", solver]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"code": code, "ok": False, "error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
            if not result.get("ok") and verbose:
                sys.stderr.write(proc.stderr)
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    if verbose:
        sys.stderr.write(proc.stderr)
    return {"code": code, "ok": False,
            "error": f"exit status {proc.returncode} (killed for memory?): {tail[0]}"}


def _f(value, fmt):
    return "-" if value is None else format(value, fmt)


COLUMNS = ["code", "elements", "DOFs", "pattern s", "assembly s", "constraints s", "AMG setup s",
           "solve s", "CG it", "rel. residual", "peak MB", "base MB", "B/DOF", "Fz N", "CPU s"]


def table_row(r: dict) -> list[str]:
    if not r.get("ok"):
        return [r["code"], "-", "-", "failed: " + r.get("error", "?")] + [""] * (len(COLUMNS) - 4)
    return [
        r["code"], f"{r['elements']:,}", f"{r['dofs']:,}",
        _f(r.get("pattern_time"), ".3f"), _f(r.get("assembly_time"), ".3f"),
        _f(r.get("constraints_time"), ".3f"), _f(r.get("setup_time"), ".2f"),
        _f(r.get("solve_time"), ".2f"), _f(r.get("iterations"), "d"),
        _f(r.get("residual"), ".1e"), f"{r['peak_rss'] / 1e6:,.0f}",
        _f(r["base_rss"] / 1e6 if r.get("base_rss") else None, ",.0f"),
        f"{r['peak_rss'] / r['dofs']:,.0f}", f"{r['fz']:.3f}", _f(r.get("solve_call_cpu"), ".1f"),
    ]


WIDTHS = [10, 9, 10, 9, 10, 13, 11, 8, 5, 13, 8, 7, 6, 10, 7]


def print_console_row(cells: list[str]) -> None:
    if cells[3].startswith("failed"):
        print(f"{cells[0]:<10} {cells[3]}", flush=True)
    else:
        print(" ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in
                       enumerate(zip(cells, WIDTHS))), flush=True)


def print_markdown(rows: list[list[str]]) -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def comparison(v: dict, s: dict) -> dict | None:
    if not (v.get("ok") and s.get("ok")):
        return None
    v_asm = (v.get("pattern_time") or 0.0) + (v.get("assembly_time") or 0.0)
    v_solve = (v.get("setup_time") or 0.0) + (v.get("solve_time") or 0.0)
    s_solve = s["setup_time"] + s["solve_time"]
    return {
        "elements": v["elements"],
        "assembly_speedup": s["assembly_time"] / v_asm if v_asm > 0 else float("nan"),
        "asm_only_speedup": s["asm_time"] / v["assembly_time"] if v.get("assembly_time") else float("nan"),
        "solve_ratio": v_solve / s_solve if s_solve > 0 else float("nan"),
        "memory_ratio": v["peak_rss"] / s["peak_rss"],
        "fz_rel_diff": abs(v["fz"] - s["fz"]) / abs(s["fz"]),
    }


def check_import(repeats: int, timeout: float) -> int:
    """Wall time of ``python -c 'import vertebrafe; <small solve>'`` with a warm numba cache."""
    script = (
        "import vertebrafe\n"
        "from vertebrafe.mesh import box\n"
        "mesh = box((40.0, 30.0, 25.0), (8, 6, 5), origin=(0.0, 0.0, 0.0))\n"
        "model = vertebrafe.Model(mesh, E=100.0, nu=0.3)\n"
        "model.fix(mesh.node_sets['zmin'], 'xyz')\n"
        "model.prescribe(mesh.node_sets['zmax'], 'z', -0.1)\n"
        "sol = model.solve()\n"
        "print(float(sol.reaction(mesh.node_sets['zmax'])[2]))\n"
    )
    cmd = [sys.executable, "-c", script]
    print("check-import: python -c 'import vertebrafe; <240-cell solve>'")
    t0 = time.perf_counter()
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    t_first = time.perf_counter() - t0
    if first.returncode != 0:
        print(first.stderr.strip().splitlines()[-1] if first.stderr.strip() else "failed")
        return 1
    print(f"  first run (fills the numba cache if cold): {t_first:.2f} s, Fz = {first.stdout.strip()} N")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
        times.append(time.perf_counter() - t0)
    best, median = min(times), statistics.median(times)
    verdict = "meets" if median <= 3.0 else "misses"
    print(f"  warm cache, {repeats} runs: min {best:.2f} s, median {median:.2f} s "
          f"({verdict} the 3 s target)")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy, scipy.sparse, numba, pyamg"], check=True)
    print(f"  for reference, python -c 'import numpy, scipy.sparse, numba, pyamg': "
          f"{time.perf_counter() - t0:.2f} s")
    return 0 if median <= 3.0 else 1


#: measured peak resident memory of the scikit-fem run per element (50k elements: 1.9 GB), bytes
SKFEM_BYTES_PER_ELEMENT = 42_000


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, bytes (None where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def source_revision() -> str:
    """Git revision of the vertebrafe sources imported (``+dirty`` with local changes)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("vertebrafe")
        where = os.path.dirname(spec.origin) if spec and spec.origin else "."
        rev = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev or "unknown") + ("+dirty" if dirty else "") + f" ({where})"
    except Exception:  # noqa: BLE001 - informative only
        return "unknown"


def machine_description() -> str:
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, {platform.system()}, Python {platform.python_version()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("Usage::")[1])
    parser.add_argument("--sizes", default="small",
                        help="small (10k), all (10k..400k), full (all + 1M), or a comma list "
                             "of element counts such as 50k,150k,1M (default: small)")
    parser.add_argument("--no-skfem", action="store_true", help="skip the scikit-fem peer")
    parser.add_argument("--skfem-max", type=parse_size, default=parse_size("400k"),
                        help="largest size solved with scikit-fem (default 400k; its assembly "
                             "needs several GB more than vertebrafe's)")
    parser.add_argument("--formulation", default="full", choices=["full", "bbar", "incompatible"],
                        help="vertebrafe hex8 formulation (default full, the same as scikit-fem; "
                             "with the others use --no-skfem, the discretisations differ)")
    parser.add_argument("--solver", default="amg", help="vertebrafe solver (default amg)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per-run time limit, s")
    parser.add_argument("--json", metavar="PATH", help="also write all results to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="show worker tracebacks")
    parser.add_argument("--check-import", action="store_true",
                        help="time import + a small solve in a fresh interpreter (warm numba cache)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats for --check-import and --assembly")
    parser.add_argument("--assembly", metavar="FORMULATIONS",
                        help="only time the stiffness assembly of these formulations (comma list, e.g. "
                             "bbar,incompatible), --repeats times each, interleaved, no solve")
    parser.add_argument("--no-calculix", action="store_true", help="skip the CalculiX (ccx) peer")
    parser.add_argument("--calculix-max", type=parse_size, default=parse_size("50k"),
                        help="largest size solved with CalculiX (default 50k; its direct solver needs "
                             "far more memory and time than AMG-CG)")
    parser.add_argument("--threads", type=int,
                        help="numba threads of each vertebrafe process and ccx's threads (default: numba's "
                             "default, one per core). With 1 vertebrafe runs the serial twins of its kernels "
                             "(src/vertebrafe/fem/jit.py), which the test suite's one-thread processes compile "
                             "anyway, so its smoke run does not compile the parallel builds in a subprocess")
    parser.add_argument("--worker", choices=["vertebrafe", "skfem", "calculix"], help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        shape = tuple(int(s) for s in args.shape.split(","))
        return worker(args.worker, shape, args.formulation, args.solver, args.threads)
    if args.check_import:
        return check_import(args.repeats, args.timeout)
    if args.assembly:
        print(f"vertebrafe assembly, {_dt.date.today().isoformat()}, {machine_description()}, "
              f"sources {source_revision()}")
        print("command: python benchmarks/bench_core.py " + " ".join(argv if argv is not None else sys.argv[1:]))
        if hasattr(os, "getloadavg"):
            print("load average before the run (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        sizes = [parse_size(t) for t in SIZE_SETS.get(args.sizes, args.sizes.split(","))]
        return compare_assembly(sizes, args.assembly.split(","), args.repeats)

    tokens = SIZE_SETS.get(args.sizes, args.sizes.split(","))
    sizes = [parse_size(t) for t in tokens]
    print(f"vertebrafe core benchmark, {_dt.date.today().isoformat()}, {machine_description()}")
    print(f"box {LENGTHS} mm, ellipsoid semi-axes {SEMI_AXES} mm, E {E_INCLUSION:g}/{E_MATRIX:g} MPa, "
          f"nu {NU}, uz(top) = {UZ_TOP} mm, rtol {RTOL:g}, vertebrafe formulation "
          f"{args.formulation!r}, solver {args.solver!r}"
          + ("" if args.threads is None else f", {args.threads} thread(s) per process"))
    print(f"vertebrafe sources: {source_revision()}")
    if hasattr(os, "getloadavg"):
        print("load average before the run (1, 5, 15 min): "
              + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("command: python benchmarks/bench_core.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    # fill the numba cache once, so that no measured process pays for (or holds the memory of)
    # compilation; each worker still warms up in-process on a tiny model
    t0 = time.perf_counter()
    warm = run_in_subprocess("vertebrafe", WARMUP_SHAPE, args.formulation, args.solver, args.timeout,
                             args.verbose, args.threads)
    print(f"numba cache warm-up: {time.perf_counter() - t0:.1f} s"
          + ("" if warm.get("ok") else f" (failed: {warm.get('error')})"))
    results, rows, comparisons = [], [], []
    print()
    print_console_row(COLUMNS)
    for n in sizes:
        shape = grid_shape(n)
        print(f"-- {size_label(n)}: grid {shape[0]} x {shape[1]} x {shape[2]} = "
              f"{math.prod(shape):,} cells, {3 * math.prod(s + 1 for s in shape):,} DOFs", flush=True)
        v = run_in_subprocess("vertebrafe", shape, args.formulation, args.solver, args.timeout,
                              args.verbose, args.threads)
        v["size"] = size_label(n)
        results.append(v)
        rows.append(table_row(v))
        print_console_row(rows[-1])
        if not args.no_calculix and n <= args.calculix_max and args.formulation in ("full", "incompatible"):
            c = run_in_subprocess("calculix", shape, args.formulation, args.solver, args.timeout, args.verbose,
                                  args.threads)
            c["size"] = size_label(n)
            results.append(c)
            rows.append(table_row(c))
            print_console_row(rows[-1])
            if c.get("ok") and v.get("ok"):
                c["fz_rel_diff"] = abs(c["fz"] - v["fz"]) / abs(v["fz"])
                print(f"   calculix {c['ccx_version']}: deck written by vertebrafe in {c['write_time']:.2f} s "
                      f"({c['deck_mb']:.0f} MB), ccx total (input, assembly, SPOOLES direct solve) "
                      f"{c['solve_time']:.2f} s; |dFz|/|Fz| vs vertebrafe = {c['fz_rel_diff']:.1e}", flush=True)
        if args.no_skfem or n > args.skfem_max:
            continue
        need, avail = SKFEM_BYTES_PER_ELEMENT * math.prod(shape), available_memory()
        if avail is not None and need > 0.9 * avail:
            print(f"   skfem skipped: it needs about {need / 1e9:.1f} GB, {avail / 1e9:.1f} GB available")
            continue
        s = run_in_subprocess("skfem", shape, args.formulation, args.solver, args.timeout,
                              args.verbose)
        s["size"] = size_label(n)
        results.append(s)
        rows.append(table_row(s))
        print_console_row(rows[-1])
        if s.get("ok"):
            print(f"   skfem: basis {s['basis_time']:.2f} s + asm {s['asm_time']:.2f} s, "
                  f"{s['amg_levels']} AMG levels", flush=True)
        c = comparison(v, s)
        if c:
            comparisons.append(c)
            print(f"   skfem/vertebrafe assembly (pattern+assembly vs basis+asm): "
                  f"{c['assembly_speedup']:.0f}x; vertebrafe/skfem setup+solve time "
                  f"{c['solve_ratio']:.2f}, peak memory {c['memory_ratio']:.2f}; "
                  f"|dFz|/|Fz| = {c['fz_rel_diff']:.1e}", flush=True)

    print("\nResults (times in s; peak MB = RSS high-water mark of the process solving one size, "
          "base MB = its RSS after imports and warm-up; B/DOF = peak / DOFs)\n")
    print_markdown(rows)
    if comparisons:
        print("\n| elements | assembly speed-up vs skfem | asm-only speed-up | setup+solve time ratio "
              "vertebrafe/skfem | peak memory ratio | Fz relative difference |")
        print("|---|---|---|---|---|---|")
        for c in comparisons:
            print(f"| {c['elements']:,} | {c['assembly_speedup']:.0f}x | {c['asm_only_speedup']:.0f}x | "
                  f"{c['solve_ratio']:.2f} | {c['memory_ratio']:.2f} | {c['fz_rel_diff']:.1e} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"date": _dt.datetime.now().isoformat(timespec="seconds"),
                       "machine": machine_description(), "argv": sys.argv[1:],
                       "results": results, "comparisons": comparisons}, fh, indent=2)
    failed = [r for r in results if not r.get("ok")]
    for r in failed:
        print(f"FAILED {r['code']} {r.get('size')}: {r.get('error')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
