"""Linear elasticity matrices in Voigt notation (xx, yy, zz, xy, yz, xz), engineering shear strains.

All moduli in MPa. Every function returns ``(..., 6, 6)`` arrays so that per-cell materials are plain
arrays; :func:`validate` checks a stack of matrices and names the first offending cell.
"""
import numpy as np

from .errors import InputError, MaterialError

__all__ = ["check_range", "isotropic", "orthotropic", "transversely_isotropic", "validate", "axial_modulus",
           "stiffness_tensor", "stiffness_voigt", "voigt_to_tensor", "engineering", "rotate_stiffness", "frame_with_normal", "laminate"]

# Voigt index -> tensor index pair (xx, yy, zz, xy, yz, xz)
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2))


def check_range(name, value, low, high, low_open=True, high_open=True):
    """``value`` (scalar or per-cell array) as float64, or :class:`MaterialError` naming the first bad cell,
    its value and the allowed range (open or closed at each end); non-finite values are always bad."""
    value = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(value)
    bad |= (value <= low) if low_open else (value < low)
    bad |= (value >= high) if high_open else (value > high)
    if np.any(bad):
        idx = np.flatnonzero(np.atleast_1d(bad))
        where = f"cell {idx[0]}" if value.ndim else "scalar"
        v = np.atleast_1d(value)[idx[0]]
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise MaterialError(
            f"{name} = {v!r} at {where} ({idx.size} value(s) invalid); allowed range {lo}{low}, {high}{hi}")
    return value


def isotropic(E, nu):
    """Isotropic elasticity ``(..., 6, 6)`` from Young's modulus ``E`` (MPa) and Poisson's ratio ``nu``.

    ``E`` and ``nu`` are scalars or arrays that broadcast together; E > 0 and -1 < nu < 0.5.
    """
    E = check_range("E (MPa)", E, 0.0, np.inf)
    nu = check_range("nu", nu, -1.0, 0.5)
    E, nu = np.broadcast_arrays(E, nu)
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    mu = E / (2 * (1 + nu))
    C = np.zeros(E.shape + (6, 6))
    C[..., :3, :3] = lam[..., None, None]
    for i in range(3):
        C[..., i, i] += 2 * mu
        C[..., 3 + i, 3 + i] = mu
    return C


def orthotropic(Ex, Ey, Ez, nu_xy, nu_yz, nu_xz, Gxy, Gyz, Gxz):
    """Orthotropic elasticity ``(..., 6, 6)`` from engineering constants along x, y, z.

    Moduli in MPa; ``nu_ij`` is the contraction along j for a stretch along i (nu_ij / E_i = nu_ji / E_j).
    Arguments broadcast together. Raises :class:`MaterialError` if the result is not positive definite.
    """
    args = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64)
                                 for a in (Ex, Ey, Ez, nu_xy, nu_yz, nu_xz, Gxy, Gyz, Gxz)])
    Ex, Ey, Ez, nu_xy, nu_yz, nu_xz, Gxy, Gyz, Gxz = args
    for name, v in (("Ex", Ex), ("Ey", Ey), ("Ez", Ez), ("Gxy", Gxy), ("Gyz", Gyz), ("Gxz", Gxz)):
        check_range(f"{name} (MPa)", v, 0.0, np.inf)
    S = np.zeros(Ex.shape + (6, 6))
    S[..., 0, 0] = 1 / Ex
    S[..., 1, 1] = 1 / Ey
    S[..., 2, 2] = 1 / Ez
    S[..., 0, 1] = S[..., 1, 0] = -nu_xy / Ex
    S[..., 1, 2] = S[..., 2, 1] = -nu_yz / Ey
    S[..., 0, 2] = S[..., 2, 0] = -nu_xz / Ex
    S[..., 3, 3] = 1 / Gxy
    S[..., 4, 4] = 1 / Gyz
    S[..., 5, 5] = 1 / Gxz
    eig = np.linalg.eigvalsh(S)
    if np.any(eig <= 0):
        raise MaterialError("orthotropic constants give a compliance matrix that is not positive definite; "
                            "check that |nu_ij| < sqrt(E_i / E_j) and 1 - nu_xy nu_yx - ... > 0")
    return np.linalg.inv(S)


def transversely_isotropic(E_axial, E_transverse, nu_transverse, nu_axial, G_axial, axis="z"):
    """Transversely isotropic elasticity ``(..., 6, 6)`` with the symmetry axis along ``axis``.

    ``E_axial`` along the axis, ``E_transverse`` in the isotropic plane (MPa); ``nu_transverse`` is the
    in-plane Poisson ratio, ``nu_axial`` the transverse contraction for an axial stretch, ``G_axial`` the
    shear modulus in planes containing the axis (MPa). Only ``axis="z"`` (superior) is supported.
    """
    if axis != "z":
        raise MaterialError(f"axis = {axis!r}; allowed: 'z' (the superior axis of the patient frame)")
    Et = np.asarray(E_transverse, dtype=np.float64)
    Gt = Et / (2 * (1 + np.asarray(nu_transverse, dtype=np.float64)))
    # nu_xz is the z-contraction for an x-stretch: nu_xz / Ex = nu_zx / Ez with nu_zx = nu_axial.
    nu_xz = np.asarray(nu_axial) * Et / np.asarray(E_axial, dtype=np.float64)
    return orthotropic(Et, Et, E_axial, nu_transverse, nu_xz, nu_xz, Gt, G_axial, G_axial)


def validate(C, cell_ids=None, symmetric_tol=1e-8):
    """Check a stack ``(m, 6, 6)`` of elasticity matrices: finite, symmetric and positive definite.

    ``cell_ids (m,)`` names the cell of each matrix in messages (default: its position). Returns ``C``
    as a contiguous float64 array; raises :class:`MaterialError` naming the first bad cell.
    """
    C = np.ascontiguousarray(C, dtype=np.float64)
    if C.ndim == 2:
        C = C[None]
    if C.ndim != 3 or C.shape[1:] != (6, 6):
        raise MaterialError(f"C has shape {C.shape}; expected (6, 6) or (m, 6, 6)")
    cell_ids = np.arange(C.shape[0]) if cell_ids is None else np.asarray(cell_ids)
    finite = np.isfinite(C).all(axis=(1, 2))
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise MaterialError(f"C of cell {cell_ids[i]} has non-finite entries ({int((~finite).sum())} cell(s))")
    scale = np.abs(C).max(axis=(1, 2))
    asym = np.abs(C - C.transpose(0, 2, 1)).max(axis=(1, 2))
    bad = asym > symmetric_tol * np.maximum(scale, 1e-300)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MaterialError(f"C of cell {cell_ids[i]} is not symmetric (max |C - C^T| = {asym[i]:.3g} MPa)")
    eig_min = np.linalg.eigvalsh(C)[:, 0]
    bad = eig_min <= 1e-12 * np.maximum(scale, 1e-300)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MaterialError(f"C of cell {cell_ids[i]} is not positive definite (smallest eigenvalue {eig_min[i]:.3g} MPa); "
                            f"{int(bad.sum())} cell(s) affected")
    return C


def axial_modulus(C):
    """Axial (z) Young's modulus ``1 / S_zz`` (MPa) of elasticity matrices ``(..., 6, 6)``."""
    return 1.0 / np.linalg.inv(np.asarray(C, dtype=float))[..., 2, 2]


def voigt_to_tensor(s):
    """``(..., 6)`` Voigt (tensor shear) -> ``(..., 3, 3)`` symmetric tensors."""
    s = np.asarray(s)
    t = np.empty(s.shape[:-1] + (3, 3))
    t[..., 0, 0], t[..., 1, 1], t[..., 2, 2] = s[..., 0], s[..., 1], s[..., 2]
    t[..., 0, 1] = t[..., 1, 0] = s[..., 3]
    t[..., 1, 2] = t[..., 2, 1] = s[..., 4]
    t[..., 0, 2] = t[..., 2, 0] = s[..., 5]
    return t


def engineering(eps):
    """Engineering-shear copy ``(..., 6)`` of tensor-shear Voigt strains ``(..., 6)`` (xx, yy, zz, xy, yz, xz)."""
    out = np.array(eps, dtype=float, copy=True)
    out[..., 3:] *= 2.0
    return out


def stiffness_tensor(C):
    """Fourth-order stiffness ``(..., 3, 3, 3, 3)`` (MPa, minor and major symmetries filled) of Voigt matrices
    ``(..., 6, 6)`` (engineering shear)."""
    C = np.asarray(C, dtype=float)
    T = np.zeros(C.shape[:-2] + (3, 3, 3, 3))
    for I, (i, j) in enumerate(VOIGT_PAIRS):
        for J, (k, l) in enumerate(VOIGT_PAIRS):
            for a, b in ((i, j), (j, i)):
                for c, d in ((k, l), (l, k)):
                    T[..., a, b, c, d] = C[..., I, J]
    return T


def stiffness_voigt(T):
    """Voigt matrices ``(..., 6, 6)`` (engineering shear) of fourth-order stiffnesses ``(..., 3, 3, 3, 3)``."""
    T = np.asarray(T, dtype=float)
    C = np.empty(T.shape[:-4] + (6, 6))
    for I, (i, j) in enumerate(VOIGT_PAIRS):
        for J, (k, l) in enumerate(VOIGT_PAIRS):
            C[..., I, J] = T[..., i, j, k, l]
    return C


_T = np.array([0, 1, 3])            # in-plane strains (continuous across layers normal to z)
_N = np.array([2, 4, 5])            # interface stresses (continuous)


def rotate_stiffness(C, Q):
    """Stiffness ``(k, 6, 6)`` expressed in the rotated bases ``Q (k, 3, 3)`` (rows: new axes in old
    coordinates): ``C'_abcd = Q_ai Q_bj Q_ck Q_dl C_ijkl``."""
    T = stiffness_tensor(C)
    R = np.einsum("kai,kbj,kcm,kdl,kijml->kabcd", Q, Q, Q, Q, T, optimize=True)
    return stiffness_voigt(R)


def frame_with_normal(n):
    """Orthonormal bases ``(k, 3, 3)`` (rows: new x, y, z axes) whose z axis is the unit normal ``n (k, 3)``."""
    n = np.asarray(n, dtype=float)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    helper = np.where(np.abs(n[:, [0]]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    e1 = np.cross(helper, n)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(n, e1)
    return np.stack([e1, e2, n], axis=1)


def laminate(C_phases, fractions, normals):
    """Homogenised stiffness ``(k, 6, 6)`` of laminates of ``p`` phases.

    ``C_phases (p, k, 6, 6)`` (or ``(p, 6, 6)`` broadcast over the cells), ``fractions (p, k)`` summing to
    1 per cell, ``normals (k, 3)`` the layer normals (any length > 0). Across the layers the phases act
    in series, along them in parallel: the exact homogenised stiffness of flat layers of any anisotropy
    (Backus 1962; Milton 2002 ch. 9); :mod:`vertebrafe.clinical.mixing` gives the formula."""
    f = np.asarray(fractions, dtype=float)
    p, k = f.shape
    C = np.asarray(C_phases, dtype=float)
    C = np.broadcast_to(C[:, None] if C.ndim == 3 else C, (p, k, 6, 6))
    if not np.allclose(f.sum(axis=0), 1.0, atol=1e-9):
        raise InputError("laminate: the phase fractions must sum to 1 in every cell")
    Q = frame_with_normal(normals)
    Cr = np.stack([rotate_stiffness(C[i], Q) for i in range(p)])         # (p, k, 6, 6)
    A = Cr[:, :, _T[:, None], _T]
    B = Cr[:, :, _T[:, None], _N]
    D = Cr[:, :, _N[:, None], _N]
    Dinv = np.linalg.inv(D)
    DinvBt = Dinv @ np.swapaxes(B, -1, -2)                                # (p, k, 3, 3)
    w = f[:, :, None, None]
    Ds = np.linalg.inv((w * Dinv).sum(axis=0))
    M = (w * DinvBt).sum(axis=0)                                          # <D^-1 B^T>
    Bs_t = Ds @ M
    As = (w * (A - B @ DinvBt)).sum(axis=0) + np.swapaxes(M, -1, -2) @ Ds @ M
    out = np.empty((k, 6, 6))
    out[:, _T[:, None], _T] = As
    out[:, _T[:, None], _N] = np.swapaxes(Bs_t, -1, -2)
    out[:, _N[:, None], _T] = Bs_t
    out[:, _N[:, None], _N] = Ds
    out = 0.5 * (out + np.swapaxes(out, -1, -2))
    return rotate_stiffness(out, np.swapaxes(Q, -1, -2))
