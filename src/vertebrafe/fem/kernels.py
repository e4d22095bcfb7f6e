"""Numba kernels for isoparametric solid elements.

The kernels are generic over the element type: they take the reference shape-function gradients at
the quadrature points ``dN (q, k, 3)`` and the weights ``w (q,)`` from
:class:`vertebrafe.elements.ElementType`, so a new element type needs new tables, not new kernels.

Strain vectors use Voigt order xx, yy, zz, xy, yz, xz with engineering shear strains
(gamma_xy = 2 eps_xy). Two formulations:

- full: standard displacement formulation, full quadrature;
- B-bar (mean dilatation, Hughes 1980): the volumetric part of the strain is replaced by its
  element average, which removes volumetric locking for nearly incompressible materials.
"""
import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def gradients(xe, dN_ref, grad, detJ):
    """Physical shape-function gradients at all quadrature points.

    xe (k, 3) node coordinates (mm); dN_ref (q, k, 3) reference gradients. Writes grad (q, k, 3)
    (1/mm) and detJ (q,) (mm^3 per unit reference volume). Returns the smallest det J.
    """
    q, k = dN_ref.shape[0], dN_ref.shape[1]
    min_det = np.inf
    for g in range(q):
        j00 = j01 = j02 = j10 = j11 = j12 = j20 = j21 = j22 = 0.0
        for a in range(k):
            d0, d1, d2 = dN_ref[g, a, 0], dN_ref[g, a, 1], dN_ref[g, a, 2]
            x0, x1, x2 = xe[a, 0], xe[a, 1], xe[a, 2]
            j00 += d0 * x0; j01 += d0 * x1; j02 += d0 * x2
            j10 += d1 * x0; j11 += d1 * x1; j12 += d1 * x2
            j20 += d2 * x0; j21 += d2 * x1; j22 += d2 * x2
        det = (j00 * (j11 * j22 - j12 * j21) - j01 * (j10 * j22 - j12 * j20)
               + j02 * (j10 * j21 - j11 * j20))
        detJ[g] = det
        if det < min_det:
            min_det = det
        inv = 1.0 / det
        i00 = (j11 * j22 - j12 * j21) * inv
        i01 = (j02 * j21 - j01 * j22) * inv
        i02 = (j01 * j12 - j02 * j11) * inv
        i10 = (j12 * j20 - j10 * j22) * inv
        i11 = (j00 * j22 - j02 * j20) * inv
        i12 = (j02 * j10 - j00 * j12) * inv
        i20 = (j10 * j21 - j11 * j20) * inv
        i21 = (j01 * j20 - j00 * j21) * inv
        i22 = (j00 * j11 - j01 * j10) * inv
        for a in range(k):
            d0, d1, d2 = dN_ref[g, a, 0], dN_ref[g, a, 1], dN_ref[g, a, 2]
            grad[g, a, 0] = i00 * d0 + i01 * d1 + i02 * d2
            grad[g, a, 1] = i10 * d0 + i11 * d1 + i12 * d2
            grad[g, a, 2] = i20 * d0 + i21 * d1 + i22 * d2
    return min_det


@njit(cache=True, fastmath=False)
def mean_gradients(grad, detJ, w, out):
    """Volume-averaged gradients ``out (k, 3)`` for the B-bar formulation; returns the volume (mm^3)."""
    q, k = grad.shape[0], grad.shape[1]
    vol = 0.0
    for g in range(q):
        vol += w[g] * detJ[g]
    for a in range(k):
        for i in range(3):
            s = 0.0
            for g in range(q):
                s += w[g] * detJ[g] * grad[g, a, i]
            out[a, i] = s / vol
    return vol


@njit(cache=True, fastmath=False)
def strain_matrix(grad_g, gbar, bbar, B):
    """Fill B (6, 3k) at one quadrature point from gradients ``grad_g (k, 3)``.

    With ``bbar`` the dilatational part uses the element-mean gradients ``gbar (k, 3)``.
    """
    k = grad_g.shape[0]
    B[:, :] = 0.0
    for a in range(k):
        dx, dy, dz = grad_g[a, 0], grad_g[a, 1], grad_g[a, 2]
        c = 3 * a
        B[0, c] = dx
        B[1, c + 1] = dy
        B[2, c + 2] = dz
        B[3, c] = dy
        B[3, c + 1] = dx
        B[4, c + 1] = dz
        B[4, c + 2] = dy
        B[5, c] = dz
        B[5, c + 2] = dx
        corr = _dilatation_correction(gbar, grad_g, a, bbar)
        for j in range(3):
            B[0, c + j] += corr[j]
            B[1, c + j] += corr[j]
            B[2, c + j] += corr[j]


@njit(cache=True, fastmath=False)
def _dilatation_correction(gbar, grad_g, a, bbar):
    """B-bar correction (gbar - grad) / 3 of node ``a`` (zero for the full formulation)."""
    if not bbar:
        return 0.0, 0.0, 0.0
    return ((gbar[a, 0] - grad_g[a, 0]) / 3.0, (gbar[a, 1] - grad_g[a, 1]) / 3.0,
            (gbar[a, 2] - grad_g[a, 2]) / 3.0)


@njit(cache=True, fastmath=False)
def element_stiffness(xe, dN_ref, w, C, bbar, grad, detJ, gbar, CB, Ke):
    """Element stiffness ``Ke (3k, 3k)`` (N/mm) of one cell; scratch arrays are passed in.

    xe (k, 3) mm; C (6, 6) MPa; returns the smallest Jacobian determinant (<= 0: inverted cell).
    The product B^T C B is formed node block by node block, using the sparsity of B: with gradients
    d = (dx, dy, dz) and the B-bar dilatation correction c = (gbar - d) / 3 (zero for the full
    formulation), the strain matrix of node a is B_a = [standard rows of d] + c added to rows xx, yy, zz.
    ``CB`` is scratch of shape (6, 3k) that holds C B_a (times the quadrature weight) per node.
    """
    q, k = dN_ref.shape[0], dN_ref.shape[1]
    min_det = gradients(xe, dN_ref, grad, detJ)
    if bbar:
        mean_gradients(grad, detJ, w, gbar)
    Ke[:, :] = 0.0
    csum = np.empty(6)
    for i in range(6):
        csum[i] = C[i, 0] + C[i, 1] + C[i, 2]
    for g in range(q):
        f = w[g] * detJ[g]
        # D_b = C B_b (6 x 3) for every node, scaled by the quadrature weight
        for b in range(k):
            dx, dy, dz = grad[g, b, 0], grad[g, b, 1], grad[g, b, 2]
            cx, cy, cz = _dilatation_correction(gbar, grad[g], b, bbar)
            for i in range(6):
                CB[i, 3 * b] = f * (C[i, 0] * dx + C[i, 3] * dy + C[i, 5] * dz + cx * csum[i])
                CB[i, 3 * b + 1] = f * (C[i, 1] * dy + C[i, 3] * dx + C[i, 4] * dz + cy * csum[i])
                CB[i, 3 * b + 2] = f * (C[i, 2] * dz + C[i, 4] * dy + C[i, 5] * dx + cz * csum[i])
        for a in range(k):
            dx, dy, dz = grad[g, a, 0], grad[g, a, 1], grad[g, a, 2]
            cx, cy, cz = _dilatation_correction(gbar, grad[g], a, bbar)
            r = 3 * a
            for col in range(r, 3 * k):
                d0, d1, d2, d3, d4, d5 = CB[0, col], CB[1, col], CB[2, col], CB[3, col], CB[4, col], CB[5, col]
                sv = d0 + d1 + d2
                Ke[r, col] += dx * d0 + dy * d3 + dz * d5 + cx * sv
                Ke[r + 1, col] += dy * d1 + dx * d3 + dz * d4 + cy * sv
                Ke[r + 2, col] += dz * d2 + dy * d4 + dx * d5 + cz * sv
    for r in range(3 * k):
        for c in range(r):
            Ke[r, c] = Ke[c, r]
    return min_det


@njit(cache=True, fastmath=False)
def element_strains(xe, ue, dN_ref, w, bbar, grad, detJ, gbar, B, eps):
    """Engineering strains ``eps (q, 6)`` at the quadrature points from nodal displacements ue (k, 3) mm."""
    q, k = dN_ref.shape[0], dN_ref.shape[1]
    gradients(xe, dN_ref, grad, detJ)
    if bbar:
        mean_gradients(grad, detJ, w, gbar)
    for g in range(q):
        strain_matrix(grad[g], gbar, bbar, B)
        for i in range(6):
            s = 0.0
            for a in range(k):
                for d in range(3):
                    s += B[i, 3 * a + d] * ue[a, d]
            eps[g, i] = s
