"""First yield of cells that a cement, cavity or rim surface cuts.

A cut cell holds several phases (host bone, compacted rim, cement) combined by the laminate rule
(:mod:`vertebrafe.clinical.mixing`): across the layers (normal ``n``) the phases act in series, along
them in parallel, so each phase strains differently from the cell. The strength estimates of
:mod:`vertebrafe.post` compare a cell's principal strains with the bone yield strains times the cell
field ``yield_factor``. :func:`cut_yield_factor` sets that factor so that, under the load of a plate
test (uniaxial axial compression), a cut cell reaches its yield strain exactly when its first phase
reaches its own: ``yield_factor = r_cell / max_p r_p`` with ``r`` the strain ratio (largest compressive
or tensile principal strain over the yield strain; the cell's with the bone yield strains, each phase's
with its own). A cell of one phase gets that phase's yield strain over the bone's (damaged bone: its
``yield_factor``; cement: strength / modulus over the bone yield strain).

Phase strains of a laminate (exact for flat layers): the strain may jump across an interface only by
``sym(a_p (x) n)`` (compatibility), the traction ``C_p eps_p n`` is the same in every phase and the
phases' mean strain is the cell's::

    eps_p = eps + sym(a_p (x) n),   a_p = K_p^-1 (t - C_p eps n),   K_p,ik = C_p,ijkl n_j n_l,
    t = (sum_p f_p K_p^-1)^-1 sum_p f_p K_p^-1 C_p eps n.

Without it a cut cell yielded at the bone yield strain on its mixed (stiffer) modulus, or at the cement's
strength once half of it was cement, so coarse meshes, whose cut cells are larger and more numerous
relative to the bolus, came out stronger (docs/validation.md, "Strength of cemented vertebrae").

Each phase's own factor (:func:`phase_yield_factors`: the cell strain ratio, with the bone yield strains, at
which that phase reaches its own yield strain under the same load) is kept too, per tissue of
:func:`vertebrafe.post.metrics.tissue_volumes` (cell field ``phase_yield_factor``, columns
:data:`vertebrafe.materials.PHASE_TISSUES`; the least factor of the phases of that tissue). The yield-volume strength counts each
bone phase with its own volume and its own factor (:mod:`vertebrafe.post.strength`): a cell a quarter rim
and three quarters cancellous bone contributes a quarter of its volume at the rim's yield and three
quarters at the host's. The phase strains follow the cell's in the ratio of the plate test's axial
compression, exact for that load (the headline strength) and an approximation for the in-situ load of
the overload index. Only the cells a surface cuts use the field; the factor of an uncut cell is its
``yield_factor``.
"""
from __future__ import annotations

import numpy as np

from ..elasticity import laminate, stiffness_tensor, voigt_to_tensor
from ..materials import PHASE_TISSUES

__all__ = ["cut_yield_factor", "phase_yield_factors", "phase_strains", "treated_yield_factor", "phase_yield_field"]

#: Voigt engineering shear -> tensor shear.
_TENSOR_SHEAR = np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5])


def phase_strains(phases, fractions, normals, strain):
    """Strain tensors ``(p, k, 3, 3)`` of the phases of laminate cells with mean Voigt strain ``strain (k, 6)``.

    ``phases (p, k, 6, 6)`` MPa, ``fractions (p, k)``, ``normals (k, 3)`` (any length > 0); see the
    module docstring. A phase of zero fraction gets the strain it would have as an infinitely thin layer
    (:func:`cut_yield_factor` ignores phases below a fraction of 1e-9).
    """
    n = np.asarray(normals, dtype=float)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    f = np.asarray(fractions, dtype=float)
    T = stiffness_tensor(np.asarray(phases, dtype=float))                  # (p, k, 3, 3, 3, 3)
    E = voigt_to_tensor(np.asarray(strain, dtype=float) * _TENSOR_SHEAR)       # (k, 3, 3)
    g = np.einsum("pkijml,kml,kj->pki", T, E, n, optimize=True)            # traction of the mean strain
    K = np.einsum("pkijml,kj,kl->pkim", T, n, n, optimize=True)
    Kinv = np.linalg.inv(K)
    M = np.einsum("pk,pkij->kij", f, Kinv)
    rhs = np.einsum("pk,pkij,pkj->ki", f, Kinv, g)
    t = np.linalg.solve(M, rhs[..., None])[..., 0]
    a = np.einsum("pkij,pkj->pki", Kinv, t[None] - g)
    jump = 0.5 * (a[..., :, None] * n[None, :, None, :] + n[None, :, :, None] * a[..., None, :])
    return E[None] + jump


def _ratio(eps, yc, yt):
    lam = np.linalg.eigvalsh(eps)                                          # ascending
    return np.maximum(np.maximum(-lam[..., 0] / yc, lam[..., -1] / yt), 0.0)


def phase_yield_factors(phases, fractions, normals, yield_compression, yield_tension, bone_yield):
    """Yield-strain factor ``(p, k)`` of each phase of laminate cells: ``r_cell / r_p`` under uniaxial axial
    compression (module docstring), ``inf`` for a phase of fraction below 1e-9.

    ``phases (p, k, 6, 6)``, ``fractions (p, k)``, ``normals (k, 3)`` as for
    :func:`vertebrafe.elasticity.laminate`; ``yield_compression``, ``yield_tension`` ``(p, k)`` the
    phases' yield strains; ``bone_yield`` ``(compression, tension)`` the bone yield strains the factor
    multiplies."""
    phases = np.asarray(phases, dtype=float)
    f = np.asarray(fractions, dtype=float)
    C = laminate(phases, f, normals)
    sigma = np.zeros((C.shape[0], 6))
    sigma[:, 2] = -1.0                                                     # uniaxial axial compression
    strain = np.linalg.solve(C, sigma[..., None])[..., 0]
    eps_p = phase_strains(phases, f, normals, strain)
    r_p = _ratio(eps_p, np.asarray(yield_compression), np.asarray(yield_tension))
    r_cell = _ratio(voigt_to_tensor(strain * _TENSOR_SHEAR), bone_yield[0], bone_yield[1])
    return _factor(r_cell, r_p, f)


def _factor(r_cell, r_p, f):
    present = f > 1e-9
    return np.divide(np.broadcast_to(r_cell, r_p.shape), r_p, out=np.full(r_p.shape, np.inf), where=present)


def cut_yield_factor(phases, fractions, normals, yield_compression, yield_tension, bone_yield):
    """Yield-strain factor ``(k,)`` of laminate cells: the least of :func:`phase_yield_factors` (the cell yields
    with its first phase; module docstring)."""
    return phase_yield_factors(phases, fractions, normals, yield_compression, yield_tension, bone_yield).min(axis=0)


def treated_yield_factor(segment, cells, phases, fractions, normals, kinds, cement_E, tissues):
    """``(yield_factor (k,), phase_yield_factor (k, 3))`` of the treated ``cells`` of ``segment``: the cell's
    first-phase factor (:func:`cut_yield_factor`) and, per tissue of :data:`~vertebrafe.materials.PHASE_TISSUES`, the least factor
    of its phases (:func:`phase_yield_factors`; the cell's factor where the cell holds none of it).

    ``kinds``: one of ``"host"`` (the cell's bone: the MaterialSet's yield strains times its current
    ``yield_factor``), ``"bone"`` (undamaged or compacted bone: the MaterialSet's yield strains) or
    ``"cement"`` (:data:`~vertebrafe.materials.CEMENT_STRENGTH` / ``cement_E``) per phase; ``tissues``: its
    tissue per phase, one of :data:`~vertebrafe.materials.PHASE_TISSUES`. ``normals`` None: the phases strain alike (the Voigt
    and Hashin-Shtrikman rules)."""
    from ..materials import CEMENT_STRENGTH, YIELD_STRAIN_COMPRESSION, YIELD_STRAIN_TENSION
    ms = segment.materials
    yc = float(getattr(ms, "yield_strain_compression", YIELD_STRAIN_COMPRESSION))
    yt = float(getattr(ms, "yield_strain_tension", YIELD_STRAIN_TENSION))
    mesh = segment.mesh
    own = np.asarray(mesh.cell_data.get("yield_factor", np.ones(mesh.n_cells)), dtype=float)[cells]
    scale = {"host": own, "bone": np.ones(len(cells))}
    ycs = np.stack([np.full(len(cells), CEMENT_STRENGTH / cement_E) if k == "cement" else yc * scale[k] for k in kinds])
    yts = np.stack([np.full(len(cells), CEMENT_STRENGTH / cement_E) if k == "cement" else yt * scale[k] for k in kinds])
    f = np.asarray(fractions, dtype=float)
    if normals is None:                                # equal strains: each phase yields at its own strain
        g = _factor(np.full(len(cells), 1.0 / yc), 1.0 / ycs, f)
    else:
        g = phase_yield_factors(phases, f, normals, ycs, yts, (yc, yt))
    first = g.min(axis=0)
    per_tissue = np.stack([np.min(g[[p for p, t in enumerate(tissues) if t == name]], axis=0, initial=np.inf)
                           for name in PHASE_TISSUES], axis=1)
    return first, np.where(np.isfinite(per_tissue), per_tissue, first[:, None])


def phase_yield_field(mesh):
    """The cell field ``phase_yield_factor`` ``(m, 3)`` of ``mesh`` to update (a copy), or, on a mesh no
    surface cut yet, every column the cell's ``yield_factor``."""
    if "phase_yield_factor" in mesh.cell_data:
        return np.array(mesh.cell_data["phase_yield_factor"], dtype=float)
    yf = np.asarray(mesh.cell_data.get("yield_factor", np.ones(mesh.n_cells)), dtype=float)
    return np.repeat(yf[:, None], len(PHASE_TISSUES), axis=1)
