"""Numba kernels for isoparametric solid elements.

The kernels are generic over the element type: they take the element tables of
:class:`vertebrafe.elements.ElementType` as one tuple ``tables = (dN, w, dN0, dM)``: reference
shape-function gradients at the quadrature points ``dN (q, k, 3)``, weights ``w (q,)``, gradients at
the element centre ``dN0 (k, 3)`` and reference gradients of the ``r`` internal modes ``dM (q, r, 3)``.
A new element type needs new tables, not new kernels.

Strain vectors use Voigt order xx, yy, zz, xy, yz, xz with engineering shear strains
(gamma_xy = 2 eps_xy). The formulation of a cell is an integer code of two bit flags:

- 0, full: standard displacement formulation, full quadrature;
- :data:`MEAN_DILATATION` (1), B-bar (Hughes 1980): the volumetric part of the compatible strain is
  replaced by its element average, which removes volumetric locking for nearly incompressible
  materials;
- :data:`MODES` (2), incompatible modes (Wilson, Taylor, Doherty & Ghaboussi 1973, with the correction
  of Taylor, Beresford & Wilson 1976): the displacement is enriched by ``r`` internal modes per
  component (hex8: P = 1 - xi^2, 1 - eta^2, 1 - zeta^2). Their physical gradients use the Jacobian
  J0 at the element centre, scaled by det J0 / det J, so that they integrate to zero over any cell
  and constant strain states are reproduced exactly (patch test) also on distorted cells. The 3r
  internal unknowns are condensed out per cell, K = Kuu - Kua Kaa^-1 Kau; this removes the parasitic
  shear of hex8 in bending (shear locking), so a single cell through a thin layer bends correctly.

Both flags together (B-bar on the compatible strain plus the modes) are accepted by the kernels but
not offered by :class:`vertebrafe.Model`: on a slender cantilever with one cell through the thickness
that combination is 3 to 3.5 times too flexible (the projected dilatation decouples curvature from
axial strain), and projecting the modes' dilatation as well leaves three spurious zero-energy modes
(strain x I, y I, z I) on a rectangular cell. See docs/verification.md.

An internal mode is handled as an extra "node" whose gradient at each quadrature point is the mapped
mode gradient: the arrays of gradients are ``(q, k + r, 3)`` and the element matrix before
condensation ``(3 (k + r), 3 (k + r))``, built by the same B^T C B loop as the nodal part.
"""
import numpy as np
from numba import njit

#: Formulation flag: mean dilatation (B-bar) of the compatible strain.
MEAN_DILATATION = 1
#: Formulation flag: incompatible internal modes, condensed per cell.
MODES = 2


@njit(cache=True, fastmath=False)
def _inverse_jacobian(xe, dN_g):
    """det J and the nine entries of J^-1 (row major) from node coordinates ``xe (k, 3)`` and reference
    gradients ``dN_g (k, 3)`` at one point; J[i, j] = sum_a dN_a/dxi_i x_a,j."""
    j00 = j01 = j02 = j10 = j11 = j12 = j20 = j21 = j22 = 0.0
    for a in range(dN_g.shape[0]):
        d0, d1, d2 = dN_g[a, 0], dN_g[a, 1], dN_g[a, 2]
        x0, x1, x2 = xe[a, 0], xe[a, 1], xe[a, 2]
        j00 += d0 * x0; j01 += d0 * x1; j02 += d0 * x2
        j10 += d1 * x0; j11 += d1 * x1; j12 += d1 * x2
        j20 += d2 * x0; j21 += d2 * x1; j22 += d2 * x2
    det = (j00 * (j11 * j22 - j12 * j21) - j01 * (j10 * j22 - j12 * j20)
           + j02 * (j10 * j21 - j11 * j20))
    inv = 1.0 / det
    return (det,
            (j11 * j22 - j12 * j21) * inv, (j02 * j21 - j01 * j22) * inv, (j01 * j12 - j02 * j11) * inv,
            (j12 * j20 - j10 * j22) * inv, (j00 * j22 - j02 * j20) * inv, (j02 * j10 - j00 * j12) * inv,
            (j10 * j21 - j11 * j20) * inv, (j01 * j20 - j00 * j21) * inv, (j00 * j11 - j01 * j10) * inv)


@njit(cache=True, fastmath=False)
def gradients(xe, dN_ref, grad, detJ):
    """Physical shape-function gradients at all quadrature points.

    xe (k, 3) node coordinates (mm); dN_ref (q, k, 3) reference gradients. Writes grad[:, :k] (1/mm)
    and detJ (q,) (mm^3 per unit reference volume). Returns the smallest det J.
    """
    q, k = dN_ref.shape[0], dN_ref.shape[1]
    min_det = np.inf
    for g in range(q):
        det, i00, i01, i02, i10, i11, i12, i20, i21, i22 = _inverse_jacobian(xe, dN_ref[g])
        detJ[g] = det
        if det < min_det:
            min_det = det
        for a in range(k):
            d0, d1, d2 = dN_ref[g, a, 0], dN_ref[g, a, 1], dN_ref[g, a, 2]
            grad[g, a, 0] = i00 * d0 + i01 * d1 + i02 * d2
            grad[g, a, 1] = i10 * d0 + i11 * d1 + i12 * d2
            grad[g, a, 2] = i20 * d0 + i21 * d1 + i22 * d2
    return min_det


@njit(cache=True, fastmath=False)
def mode_gradients(xe, dN0, dM, detJ, grad):
    """Physical gradients of the internal modes, written to ``grad[:, k:k + r]`` (1/mm).

    Taylor-Beresford-Wilson: grad P = (det J0 / det J) J0^-1 dP/dxi with J0 the Jacobian at the centre
    (from ``dN0 (k, 3)``); ``detJ (q,)`` from :func:`gradients`. Integrated with w det J, each mode
    gradient sums to det J0 J0^-1 sum_g w_g dP/dxi(xi_g) = 0, which is what the patch test needs.
    """
    k = dN0.shape[0]
    q, r = dM.shape[0], dM.shape[1]
    det0, i00, i01, i02, i10, i11, i12, i20, i21, i22 = _inverse_jacobian(xe, dN0)
    for g in range(q):
        s = det0 / detJ[g]
        for i in range(r):
            d0, d1, d2 = dM[g, i, 0], dM[g, i, 1], dM[g, i, 2]
            grad[g, k + i, 0] = s * (i00 * d0 + i01 * d1 + i02 * d2)
            grad[g, k + i, 1] = s * (i10 * d0 + i11 * d1 + i12 * d2)
            grad[g, k + i, 2] = s * (i20 * d0 + i21 * d1 + i22 * d2)


@njit(cache=True, fastmath=False)
def mean_gradients(grad, detJ, w, out):
    """Volume-averaged nodal gradients ``out (k, 3)`` for the B-bar formulation; returns the volume (mm^3)."""
    q, k = grad.shape[0], out.shape[0]
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
    """Fill B (6, 3n) at one quadrature point from gradients ``grad_g (n, 3)`` (nodes, then modes).

    With ``bbar`` the dilatational part of the nodal columns uses the element-mean gradients ``gbar (k, 3)``.
    """
    n = grad_g.shape[0]
    B[:, :] = 0.0
    for a in range(n):
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
    """B-bar correction (gbar - grad) / 3 of node ``a`` (zero for the full formulation and for modes)."""
    if not bbar or a >= gbar.shape[0]:
        return 0.0, 0.0, 0.0
    return ((gbar[a, 0] - grad_g[a, 0]) / 3.0, (gbar[a, 1] - grad_g[a, 1]) / 3.0,
            (gbar[a, 2] - grad_g[a, 2]) / 3.0)


@njit(cache=True, fastmath=False)
def _condense(Ke, n, N):
    """Static condensation of the internal unknowns ``n:N`` of ``Ke (N, N)``, in place.

    Afterwards ``Ke[:n, :n]`` = Kuu - Kua Kaa^-1 Kau, ``Ke[n:, n:]`` holds the Cholesky factor L of Kaa
    (lower triangle) and ``Ke[n:, :n]`` = L^-1 Kau, as :func:`mode_amplitudes` needs them.
    """
    for j in range(n, N):
        s = Ke[j, j]
        for p in range(n, j):
            s -= Ke[j, p] * Ke[j, p]
        d = np.sqrt(s)
        Ke[j, j] = d
        for i in range(j + 1, N):
            s = Ke[i, j]
            for p in range(n, j):
                s -= Ke[i, p] * Ke[j, p]
            Ke[i, j] = s / d
    for c in range(n):
        for i in range(n, N):
            s = Ke[i, c]
            for p in range(n, i):
                s -= Ke[i, p] * Ke[p, c]
            Ke[i, c] = s / Ke[i, i]
    for a in range(n):
        for b in range(a, n):
            s = 0.0
            for i in range(n, N):
                s += Ke[i, a] * Ke[i, b]
            Ke[a, b] -= s
            Ke[b, a] = Ke[a, b]


@njit(cache=True, fastmath=False)
def mode_amplitudes(Ke, k, ue):
    """Internal-mode amplitudes alpha = -Kaa^-1 Kau u_e from a matrix condensed by :func:`element_stiffness`.

    ``ue (k + r, 3)``: nodal displacements (mm) in the first k rows; the amplitudes of mode i, one per
    component, are written to row k + i.
    """
    n, N = 3 * k, Ke.shape[0]
    z = np.empty(N - n)
    for i in range(n, N):
        s = 0.0
        for c in range(n):
            s += Ke[i, c] * ue[c // 3, c % 3]
        z[i - n] = s
    for i in range(N - 1, n - 1, -1):  # L^T alpha = -L^-1 Kau u
        s = -z[i - n]
        for p in range(i + 1, N):
            s -= Ke[p, i] * ue[p // 3, p % 3]
        ue[i // 3, i % 3] = s / Ke[i, i]


@njit(cache=True, fastmath=False)
def element_geometry(xe, tables, code, grad, detJ, gbar):
    """Gradients of nodes (and modes if ``code`` has :data:`MODES`) and B-bar means of one cell.

    Returns ``(min det J, n)``, n = k (+ r with modes) the columns of nodes and modes in ``grad (q, n, 3)``.
    """
    dN, w, dN0, dM = tables
    k = dN.shape[1]
    min_det = gradients(xe, dN, grad, detJ)
    n = k
    if code & MODES:
        mode_gradients(xe, dN0, dM, detJ, grad)
        n = k + dM.shape[1]
    if code & MEAN_DILATATION:
        mean_gradients(grad, detJ, w, gbar)
    return min_det, n


@njit(cache=True, fastmath=False)
def element_stiffness(xe, tables, C, code, grad, detJ, gbar, CB, Ke):
    """Element stiffness (N/mm) of one cell in ``Ke[:3k, :3k]``; scratch arrays are passed in.

    xe (k, 3) mm; ``tables`` see the module docstring; C (6, 6) MPa; ``code`` the formulation flags.
    Scratch: grad (q, k + r, 3), detJ (q,), gbar (k, 3), CB (6, 3 (k + r)), Ke (3 (k + r), 3 (k + r)),
    r the number of internal modes of the element type. With :data:`MODES` the internal unknowns are
    condensed out and ``Ke[3k:]`` keeps what :func:`mode_amplitudes` needs.
    Returns the smallest Jacobian determinant (<= 0: inverted cell, Ke is then meaningless).

    The product B^T C B is formed column block by column block, using the sparsity of B: with gradients
    d = (dx, dy, dz) and the B-bar dilatation correction c = (gbar - d) / 3 (zero for the full
    formulation and for modes), the strain matrix of column block a is B_a = [standard rows of d] + c
    added to rows xx, yy, zz. ``CB`` holds C B_b (times the quadrature weight) per block.
    """
    dN, w = tables[0], tables[1]
    q, k = dN.shape[0], dN.shape[1]
    bbar = (code & MEAN_DILATATION) != 0
    min_det, n = element_geometry(xe, tables, code, grad, detJ, gbar)
    N = 3 * n
    for r in range(N):
        for c in range(N):
            Ke[r, c] = 0.0
    csum = np.empty(6)
    for i in range(6):
        csum[i] = C[i, 0] + C[i, 1] + C[i, 2]
    for g in range(q):
        f = w[g] * detJ[g]
        # D_b = C B_b (6 x 3) for every column block, scaled by the quadrature weight
        for b in range(n):
            dx, dy, dz = grad[g, b, 0], grad[g, b, 1], grad[g, b, 2]
            cx, cy, cz = _dilatation_correction(gbar, grad[g], b, bbar)
            for i in range(6):
                CB[i, 3 * b] = f * (C[i, 0] * dx + C[i, 3] * dy + C[i, 5] * dz + cx * csum[i])
                CB[i, 3 * b + 1] = f * (C[i, 1] * dy + C[i, 3] * dx + C[i, 4] * dz + cy * csum[i])
                CB[i, 3 * b + 2] = f * (C[i, 2] * dz + C[i, 4] * dy + C[i, 5] * dx + cz * csum[i])
        for a in range(n):
            dx, dy, dz = grad[g, a, 0], grad[g, a, 1], grad[g, a, 2]
            cx, cy, cz = _dilatation_correction(gbar, grad[g], a, bbar)
            r = 3 * a
            for col in range(r, N):
                d0, d1, d2, d3, d4, d5 = CB[0, col], CB[1, col], CB[2, col], CB[3, col], CB[4, col], CB[5, col]
                sv = d0 + d1 + d2
                Ke[r, col] += dx * d0 + dy * d3 + dz * d5 + cx * sv
                Ke[r + 1, col] += dy * d1 + dx * d3 + dz * d4 + cy * sv
                Ke[r + 2, col] += dz * d2 + dy * d4 + dx * d5 + cz * sv
    for r in range(N):
        for c in range(r):
            Ke[r, c] = Ke[c, r]
    if n > k and min_det > 0.0:
        _condense(Ke, 3 * k, N)
    return min_det


def element_tables(element):
    """The ``tables`` tuple of an :class:`vertebrafe.elements.ElementType` for the kernels."""
    return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in
                 (element.gradients, element.weights, element.center_gradients, element.mode_gradients))
