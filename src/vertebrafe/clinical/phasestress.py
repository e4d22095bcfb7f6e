"""Stress of each tissue in a cell that a cement, cavity or rim surface cuts.

A cut cell is one element with the mixed elasticity of its phases (:mod:`vertebrafe.clinical.mixing`), so
the solver gives it one (mixed) stress. Its phases carry different stresses: under the laminate rule the
in-plane strain and the traction on the layers are the same in every phase, so a stiff PMMA layer carries
a larger in-plane stress than the bone beside it, and both differ from the cell's mean. The per-tissue
statistics of :mod:`vertebrafe.post.metrics` give each phase its own stress:

* laminate rule: the phase strains of :func:`vertebrafe.clinical.firstyield.phase_strains` (exact for flat
  layers) times each phase's own elasticity;
* Voigt rule: every phase has the cell's strain (the rule's own assumption), times its own elasticity;
* Hashin-Shtrikman rule: no phase field is defined; its cut cells keep the cell's stress in every tissue.

Both maps are linear in the cell's mean strain, so the operation keeps, per cut cell and per tissue of
:data:`~vertebrafe.materials.PHASE_TISSUES`, the ``(6, 6)`` map from the cell's strain (Voigt, engineering
shear) to the volume mean stress of that tissue's phases in the cell (MPa): :func:`phase_stress_maps`,
stored with the operation (``Operation.data[PHASE_STRESS]`` = ``(cells, maps)``). A tissue with two phases
(a compliant interface layer and the PMMA core, both ``cement``) gets their volume-weighted mean stress.
The volume-weighted sum of the tissue stresses is the cell's stress (the mean phase stress of a laminate is
its homogenised stress).
"""
from __future__ import annotations

import numpy as np

from ..elasticity import engineering
from ..materials import PHASE_STRESS, PHASE_TISSUES
from .firstyield import phase_strains

__all__ = ["phase_stress_maps", "phase_stress_data"]

def phase_stress_maps(phases, fractions, normals, tissues):
    """``(k, 3, 6, 6)``: per cut cell and tissue of :data:`~vertebrafe.materials.PHASE_TISSUES`, the map from
    the cell's mean strain (Voigt, engineering shear) to the volume mean stress (MPa) of that tissue's
    phases (module docstring); zero where the cell holds none of that tissue.

    ``phases (p, k, 6, 6)`` MPa, ``fractions (p, k)``, ``normals (k, 3)`` as for
    :func:`vertebrafe.elasticity.laminate`, or ``normals=None`` for equal phase strains (the Voigt rule);
    ``tissues``: the tissue of each phase, one of :data:`~vertebrafe.materials.PHASE_TISSUES`."""
    phases = np.asarray(phases, dtype=float)
    f = np.asarray(fractions, dtype=float)
    p, k = f.shape
    phases = np.broadcast_to(phases, (p, k, 6, 6))
    if normals is None:
        S = phases
    else:                                      # the phase stresses of the six unit strains of each cell
        C6 = np.repeat(phases, 6, axis=1)                                              # (p, 6k, 6, 6)
        eps = phase_strains(C6, np.repeat(f, 6, axis=1), np.repeat(normals, 6, axis=0),
                            np.tile(np.eye(6), (k, 1)))                                # (p, 6k, 3, 3)
        i, j = np.array([0, 1, 2, 0, 1, 0]), np.array([0, 1, 2, 1, 2, 2])
        voigt = engineering(eps[..., i, j])                                         # (p, 6k, 6)
        stress = np.einsum("pkab,pkb->pka", C6, voigt)
        S = np.swapaxes(stress.reshape(p, k, 6, 6), -1, -2)                          # [a, j]: unit strain j
    out = np.zeros((k, len(PHASE_TISSUES), 6, 6))
    for t, name in enumerate(PHASE_TISSUES):
        mine = [q for q, tissue in enumerate(tissues) if tissue == name]
        w = f[mine].sum(axis=0)
        s = np.einsum("pk,pkij->kij", f[mine], S[mine])
        out[:, t] = np.divide(s, w[:, None, None], out=np.zeros_like(s), where=w[:, None, None] > 0)
    return out


def phase_stress_data(cells, phases, fractions, normals, tissues):
    """The operation data ``{PHASE_STRESS: (cells (c,), maps (c, 3, 6, 6))}`` of the treated ``cells (k,)``
    (arguments of :func:`phase_stress_maps` for them) that hold two phases or more: a cell of one phase
    carries that phase's stress, the cell's own."""
    f = np.asarray(fractions, dtype=float)
    mixed = np.count_nonzero(f > 0, axis=0) >= 2
    phases = np.broadcast_to(np.asarray(phases, dtype=float), f.shape + (6, 6))[:, mixed]
    maps = phase_stress_maps(phases, f[:, mixed], None if normals is None else np.asarray(normals)[mixed], tissues)
    return {PHASE_STRESS: (np.asarray(cells, dtype=np.int64)[mixed], maps)}
