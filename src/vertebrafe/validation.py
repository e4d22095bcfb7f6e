"""Set-ups of the anatomy validation targets (docs/validation.md), shared by the tests and the benchmarks.

* :func:`axial_stiffness` -- one vertebral body between rigid plates (the mesh-convergence measure).
* :func:`disc_loaded_body` -- one vertebral body with its two adjacent discs, loaded through the discs,
  and the cortical shell's share of the axial force at mid-height (:func:`shell_load_share`).
* :data:`ROM_REFERENCES` and :func:`rom_rows` -- published in vitro ranges of motion of L4-L5 (and of the
  level above where no intact L4-L5 spread was found) under pure moments and the comparison of a model's
  rotations with them (``benchmarks/validation_rom.py``); :data:`FACET_FORCE_REFERENCE`, the in vitro facet
  joint forces under pure moments.

Units mm, N, MPa. Solving is not part of ``vertebrafe.anatomy`` (it knows nothing about the FE core), so
these drivers sit on the floor of :mod:`vertebrafe.simulate`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .anatomy import segment, vertebra
from .anatomy.levels import adjacent_discs
from .anatomy.vertebra import make_mesh
from .errors import InputError
from .fem import Model
from .materials import Material, MaterialSet
from .post import plate_test

__all__ = ["axial_stiffness", "cell_axial_heights", "shell_load_share", "disc_loaded_body", "FIELDS_DISC", "RomReference",
           "ROM_REFERENCES", "ROM_MODES", "rom_rows", "FACET_FORCE_REFERENCE"]


def axial_stiffness(level="L1", bmd=70.0, element_size=2.0, displacement=0.01, solver="auto", **mesh_kw):
    """Axial stiffness (N/mm) of one vertebral body between rigid plates.

    The inferior endplate surface nodes are tied to a fixed rigid plate; the superior surface nodes to a
    rigid plate with prescribed translation ``(0, 0, -displacement)`` (mm) and no rotation; stiffness =
    axial plate reaction / displacement. Returns a dict with ``stiffness`` (N/mm), ``cells``, ``dofs``,
    ``mesh_time`` and ``solve_time`` (s), ``iterations`` and ``min_scaled_jacobian``.
    """
    t0 = time.perf_counter()
    mesh = vertebra(level, element_size=element_size, **mesh_kw)
    t_mesh = time.perf_counter() - t0
    C = MaterialSet(bmd=bmd).cell_elasticity(mesh.cell_data["region"], mesh.tag_names["region"])
    t0 = time.perf_counter()
    test = plate_test(mesh, C, mesh.node_sets["inferior"], mesh.node_sets["superior"], displacement, fixed_plate=True,
                      hold_sideways=True, solver=solver)
    t_solve = time.perf_counter() - t0
    sol = test.solution
    return dict(element_size=float(element_size), cells=mesh.n_cells, dofs=3 * mesh.n_points,
                mesh_time=t_mesh, solve_time=t_solve, iterations=sol.info.get("iterations"),
                stiffness=test.stiffness,
                min_scaled_jacobian=float(mesh.quality().scaled_jacobian.min()))


def cell_axial_heights(mesh, axis=(0.0, 0.0, 1.0)):
    """Height ``(m,)`` (mm) of every cell along ``axis``: mean projection of its four vertical edges
    (VTK order: nodes 4-7 above nodes 0-3, as the anatomy meshers extrude)."""
    p = mesh.points[mesh.cells]
    return ((p[:, 4:8] - p[:, 0:4]) @ np.asarray(axis, dtype=float)).mean(axis=1)


def shell_load_share(mesh, cell_stress, layer, cortex, axis=(0.0, 0.0, 1.0)):
    """Axial force carried by the cortex cells of one layer of cells, and by the whole layer.

    For a layer of cells stacked along ``axis`` (one cell per column), the force through the layer is
    ``F = sum_cells n.sigma.n * V / h``: the cell's mean axial stress times its mean cross-section
    ``V / h`` (``h`` from :func:`cell_axial_heights`). This is the layer average of the plane-cut
    integral of ``sigma_nn`` and equals it exactly where the stress is uniform along each column.

    Parameters
    ----------
    mesh : Mesh
    cell_stress : ndarray ``(m, 6)`` MPa (Voigt xx, yy, zz, xy, yz, xz; tensor shear components)
    layer, cortex : bool ``(m,)`` masks: the cells of the layer, the cortical cells
    axis : (3,) unit vector of the section normal

    Returns
    -------
    dict: ``shell_force``, ``total_force`` (N, compression positive) and ``shell_share`` (-).
    """
    n = np.asarray(axis, dtype=float)
    n = n / np.linalg.norm(n)
    s = np.asarray(cell_stress)[layer]
    snn = (s[:, 0] * n[0] ** 2 + s[:, 1] * n[1] ** 2 + s[:, 2] * n[2] ** 2
           + 2.0 * (s[:, 3] * n[0] * n[1] + s[:, 4] * n[1] * n[2] + s[:, 5] * n[0] * n[2]))
    area = mesh.cell_volumes()[layer] / cell_axial_heights(mesh, n)[layer]
    f = -snn * area
    shell = float(f[np.asarray(cortex)[layer]].sum())
    total = float(f.sum())
    return dict(shell_force=shell, total_force=total, shell_share=shell / total)


#: The disc of the published shell-share set-up (Fields et al. 2012, J Biomech, PMC3415303: micro-FE of
#: vertebral bodies compressed through a simulated compliant disc of E = 8 MPa): one homogeneous material
#: for annulus and nucleus, without fibres; nu 0.45 [memory].
FIELDS_DISC = Material("fields2012_disc", 8.0, 0.45, "Fields et al. 2012, J Biomech (PMC3415303): compliant "
                       "disc E = 8 MPa; nu 0.45 [memory]", "homogeneous disc of the shell-share set-up", "memory")


def disc_loaded_body(level="L1", bmd=70.0, element_size=2.0, force=1000.0, solver="auto", materials=None):
    """One vertebral body with its two adjacent discs, compressed through the discs.

    By default (``materials=None``) the discs are the homogeneous compliant disc of the published
    set-up (:data:`FIELDS_DISC`) and the bone is ``MaterialSet(bmd=bmd)``'s.

    Built from ``segment([above, level, below], fibres=False, posterior=False, nucleus_prepressure=0)``
    (vertebral bodies and stress-free discs, as published: a homogeneous disc, no swelling): the cells of the two discs and of
    ``level`` are kept (the neighbouring vertebrae are dropped) and moved into the local frame of ``level`` (z = its
    axis). The caudal surface of the lower disc (the neighbour's superior endplate) is fixed; the cranial
    surface of the upper disc is tied to a rigid plate loaded with ``force`` (N) along -z, rotations
    held at zero, translations free. At mid-height of the body the force through the section is split
    into cortex and the rest with :func:`shell_load_share`; with an even number of cell layers (a node
    layer at mid-height) the two layers next to it are averaged.

    Returns a dict: ``share`` (dict of :func:`shell_load_share` plus ``applied_force``), ``cells``,
    ``dofs``, ``mesh_time``, ``solve_time`` (s), ``iterations``.
    """
    above, below = adjacent_discs(level)
    upper, lower = above.split("-")[0], below.split("-")[1]
    t0 = time.perf_counter()
    seg = segment([upper, level, lower], element_size=element_size, fibres=False, posterior=False,
                  nucleus_prepressure=0.0)
    full = seg.mesh
    q = seg.counts.n_cells                                      # cells per cell layer of the stack
    keep = full.cells_in("level", [above, level, below])
    cells = full.cells[keep]
    used = np.unique(cells)
    remap = np.full(full.n_points, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    R, o = seg.frames[level]
    points = (full.points[used] - o) @ R                        # global -> local frame of the body
    mesh = make_mesh(points, remap[cells],
                     cell_data={k: np.asarray(v)[keep] for k, v in full.cell_data.items()},
                     tag_names=full.tag_names)
    t_mesh = time.perf_counter() - t0
    gap = np.flatnonzero(keep) // q                             # cell layer index in the stack
    ms = materials if materials is not None else MaterialSet(bmd=bmd, annulus=FIELDS_DISC, nucleus=FIELDS_DISC)
    model = Model(mesh, C=ms.cell_elasticity(mesh.cell_data["region"], mesh.tag_names["region"]))
    model.fix(remap[seg.node_sets[f"{lower}:superior"]], "xyz")
    plate = model.rigid_plate(remap[seg.node_sets[f"{upper}:inferior"]])
    plate.load(force=(0.0, 0.0, -float(force)))
    plate.prescribe(rotation=(0.0, 0.0, 0.0))
    t0 = time.perf_counter()
    sol = model.solve(solver=solver)
    t_solve = time.perf_counter() - t0
    body = mesh.cells_in("level", level)
    layers = np.unique(gap[body])
    L = layers.size
    mid = [layers[L // 2]] if L % 2 else [layers[L // 2 - 1], layers[L // 2]]
    cortex = mesh.cells_in("region", "cortex")
    parts = [shell_load_share(mesh, sol.cell_stress, body & (gap == g), cortex) for g in mid]
    share = {k: float(np.mean([p[k] for p in parts])) for k in parts[0]}
    share["applied_force"] = float(force)
    return dict(share=share, cells=mesh.n_cells, dofs=3 * mesh.n_points, mesh_time=t_mesh,
                solve_time=t_solve, iterations=sol.info.get("iterations"), layers=L, mid_layers=len(mid),
                solution=sol, mesh=mesh)


# ------------------------------------------------------------------------------------------------
# Published ranges of motion under pure moments

#: Loading modes of a pure-moment test: ``{mode: (Load field, metric of the rotation)}``. Rotations are
#: compared as magnitudes (extension gives a negative ``rotation_flexion``).
ROM_MODES = {
    "flexion": ("flexion", "rotation_flexion"),
    "extension": ("extension", "rotation_flexion"),
    "lateral_bending": ("lateral_bending", "rotation_lateral_bending"),
    "axial_rotation": ("axial_rotation", "rotation_axial"),
}


@dataclass(frozen=True)
class RomReference:
    """In vitro rotations (deg) of one specimen type under pure moments, without preload.

    specimen : ``"disc"`` (posterior elements and ligaments removed: the body-disc-body specimen of
        ``segment(..., posterior=False)``) or ``"intact"``.
    level : the motion segment tested.
    source : citation, and where the numbers were read.
    moments : ``(M_low, M_high)`` N m: where the rotations at both are given, the flexibility of the
        upper, nearly linear part of the curve, ``(rot(M_high) - rot(M_low)) / (M_high - M_low)``, can be
        compared as well as the rotation at ``M_high`` (which includes the neutral zone of the specimens);
        ``M_low = None`` where only the rotation at ``M_high`` is published.
    values : ``{mode: (rot(M_low) or None, rot(M_high), spread at M_high)}`` deg; the spread is one
        standard deviation where published, else None (medians or means without a spread).
    """

    name: str
    specimen: str
    level: str
    source: str
    moments: tuple
    values: dict


_GRUBER24 = ("as transcribed in the repository of Gruber et al. 2024, Front Bioeng Biotechnol 12:1391957 "
             "(GruberGabriel/ComparativeAnalysisFEModelsIVD, ComparativeAnalysis/ExperimentalData)")

#: Published in vitro rotations of L4-L5, and of intact L3-L4 where no intact L4-L5 spread under pure moments
#: was found in a stored source (see docs/validation.md, "Range of motion" and "Intact range of motion against an
#: in vitro spread"). The ``level`` of each reference says which.
ROM_REFERENCES = (
    RomReference(
        "heuer2007_disc", "disc", "L4-L5",
        "Heuer et al. 2007, J Biomech 40:271 (stepwise reduction; eight L4-L5 specimens, last step: disc "
        "alone, posterior elements and ALL removed), medians, " + _GRUBER24 + ", ExperimentalResultsHeuerIVDROM_7-5Nm.txt",
        (2.5, 7.5),
        {"flexion": (6.64, 10.11, None), "extension": (5.15, 10.28, None),
         "lateral_bending": (3.60, 6.43, None), "axial_rotation": (2.70, 5.73, None)}),
    RomReference(
        "jaramillo_disc", "disc", "L4-L5",
        "Jaramillo et al. (five L4-L5 disc-only specimens), mean and SD, " + _GRUBER24
        + ", ExperimentalDataJaramilloL4L5_IVD_ROM.txt and _Std.txt",
        (4.0, 8.0),
        {"flexion": (9.26, 11.87, 2.23), "extension": (6.77, 8.27, 3.01),
         "lateral_bending": (5.77, 7.10, 1.29), "axial_rotation": (4.51, 5.79, 1.45)}),
    RomReference(
        "yamamoto1989_intact", "intact", "L4-L5",
        "Yamamoto et al. 1989, Spine 14:1256 (ten fresh cadaveric L1-sacrum specimens, pure moments up to "
        "10 N m; L4-5 range of motion of flexion, extension, one side of axial torque and one side of "
        "lateral bending), read in the abstract (PubMed 2603060); no spread in the abstract",
        (None, 10.0),
        {"flexion": (None, 8.9, None), "extension": (None, 5.8, None),
         "lateral_bending": (None, 5.7, None), "axial_rotation": (None, 2.2, None)}),
    RomReference(
        "niosi2006_L3-L4", "intact", "L3-L4",
        "Niosi et al. 2006, Eur Spine J 15:913, Table 1 (PMC3489456): intact L3-L4 of ten L2-L5 specimens, pure "
        "moments of +-7.5 N m without preload, mean and SD of ten specimens, lateral bending and axial rotation "
        "one side; the level above L4-L5",
        (None, 7.5),
        {"flexion": (None, 3.7, 1.5), "extension": (None, 3.3, 1.5),
         "lateral_bending": (None, 3.8, 1.4), "axial_rotation": (None, 2.1, 0.9)}),
)

#: In vitro facet joint forces of intact specimens under pure moments of up to 7.5 N m, ``{mode: (mean, SD)}``
#: N: the L1-L2 joints of T12-L2 specimens, uniaxial strain gauges on L2's superior articular processes, each
#: joint in extension, the contralateral (loaded) joint in axial rotation (Jaumard et al. 2011, J Biomech Eng
#: 133:071010, Table 2, PMC3705911, their reference 11; a secondary transcription). The nearest level to L4-L5
#: with a spread in a stored source (docs/validation.md, "Facet forces at L4-L5 against the published spreads").
FACET_FORCE_REFERENCE = {"extension": (51.5, 39.0), "axial_rotation": (70.3, 43.2)}


def rom_rows(rotations, specimen="disc", references=ROM_REFERENCES):
    """Compare a model's rotations with the published ones of ``specimen``.

    ``rotations``: ``{(mode, moment N m): rotation deg}`` for modes of :data:`ROM_MODES` at the moments of
    each reference (signs are ignored); the modes given are compared. Returns a list of dicts, two per
    reference and mode:

    * ``quantity="rotation"``: the rotation at ``M_high``; the band is mean +- SD where an SD is
      published (``band=None`` for medians without a spread: no inside/outside verdict);
    * ``quantity="flexibility"`` (deg per N m) over ``M_low..M_high``, for references that give both: the
      slope of the upper part of the curve, free of the specimens' neutral zone; its band is the span of
      the slopes of all such references of ``specimen`` (the model is inside when it lies between the most
      and least flexible specimen series).
    """
    refs = [r for r in references if r.specimen == specimen]
    if not refs:
        raise InputError(f"specimen = {specimen!r}: no published ranges of motion; known: "
                         f"{sorted({r.specimen for r in references})}")
    modes = [m for m in ROM_MODES if any(k[0] == m for k in rotations)]
    slope = {m: [(r.values[m][1] - r.values[m][0]) / (r.moments[1] - r.moments[0]) for r in refs
                 if r.moments[0] is not None] for m in modes}
    rows = []
    for r in refs:
        lo_m, hi_m = r.moments
        for mode in modes:
            lo, hi, sd = r.values[mode]
            found = abs(rotations[(mode, hi_m)])
            band = None if sd is None else (hi - sd, hi + sd)
            rows.append(dict(reference=r.name, mode=mode, quantity="rotation", moment=hi_m, found=found,
                             published=hi, band=band, inside=None if band is None else band[0] <= found <= band[1],
                             unit="deg", source=r.source))
            if lo_m is None:
                continue
            k = (abs(rotations[(mode, hi_m)]) - abs(rotations[(mode, lo_m)])) / (hi_m - lo_m)
            fb = (min(slope[mode]), max(slope[mode]))
            rows.append(dict(reference=r.name, mode=mode, quantity="flexibility", moment=(lo_m, hi_m), found=k,
                             published=(hi - lo) / (hi_m - lo_m), band=fb,
                             inside=bool(fb[0] <= k <= fb[1]) and math.isfinite(k), unit="deg/(N m)",
                             source=r.source))
    return rows
