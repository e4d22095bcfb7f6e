"""Reference volumes of the parametric anatomy, independent of the mesh.

Each body is a loft: a bottom surface (a graph z(x, y) over a star-shaped domain), a top surface, and
the ruled lateral surface joining the two boundary curves point by point in the boundary parameter
alpha. The closed surface is sampled on a fine (rho, alpha) / (eta, alpha) grid, triangulated with
outward orientation, and its volume taken by the divergence theorem (sum of signed tetrahedra). With
~1000 x 256 samples the quadrature error is far below 1e-4 relative -- unrelated to the mesh, which
uses other points (O-grid block, rings, ~64 boundary nodes).
"""
import numpy as np
from vertebrafe.anatomy.vertebra import nucleus_curve, polygon_area
from vertebrafe.elements import HEX8

N_ALPHA = 1024
N_RHO = 256


def _tri_volume(a, b, c):
    return np.einsum("...i,...i->...", a, np.cross(b, c)).sum() / 6.0


def _quads_volume(G, flip=False):
    """Signed volume contribution of grid G (nu, na, 3), periodic in the second index."""
    a = G[:-1]
    b = np.roll(G, -1, axis=1)[:-1]
    c = np.roll(G, -1, axis=1)[1:]
    d = G[1:]
    if flip:
        b, d = d, b
    return _tri_volume(a, b, c) + _tri_volume(a, c, d)


def loft_volume(bottom, top, n_rho=N_RHO):
    """Volume (mm^3) of a loft.

    ``bottom`` and ``top`` are callables ``(sigma (k,), alpha (n,)) -> points (k, n, 3)`` giving the
    surface patch at star parameter sigma in [0, 1] (sigma = 1 on the boundary curve, 0 at the centre);
    the lateral surface joins ``bottom(1, alpha)`` and ``top(1, alpha)`` with straight lines.
    """
    alpha = np.linspace(0.0, 2.0 * np.pi, N_ALPHA, endpoint=False)
    sig = np.linspace(0.0, 1.0, n_rho + 1)
    Tp = top(sig, alpha)
    Bt = bottom(sig, alpha)
    eta = np.linspace(0.0, 1.0, 3)[:, None, None]
    Lat = (1.0 - eta) * Bt[-1][None] + eta * Tp[-1][None]
    # triangle (a, b, c) with a = (row, alpha), b = (row, alpha + 1), c = (row + 1, alpha + 1) has the
    # normal t x (row direction); t x z is outward for the lateral surface, t x r = -z (outward for the
    # bottom), and the flipped order gives r x t = +z for the top.
    v = _quads_volume(Lat)
    v += _quads_volume(Tp, flip=True)
    v += _quads_volume(Bt)
    return v


def vertebra_patches(geo, curve="outline", cortex_thickness=0.4, frame=None):
    """(bottom, top) patch callables of a vertebral body (``curve`` = "outline" or "inner")."""
    R, o = frame if frame is not None else (np.eye(3), np.zeros(3))

    def boundary(outline, alpha):
        if curve == "outline":
            return outline.points(alpha)
        return outline.offset(alpha, cortex_thickness)

    def make(outline, zfun):
        def patch(sig, alpha):
            xy = sig[:, None, None] * boundary(outline, alpha)[None]
            p = np.concatenate([xy, zfun(xy)[..., None]], axis=-1)
            return p @ R.T + o
        return patch

    return make(geo.inferior, geo.z_inferior), make(geo.superior, geo.z_superior)


def vertebra_volumes(geo, cortex_thickness, endplate_thickness):
    """Analytic volumes per region of one vertebral body: dict cortex, endplate, cancellous, total."""
    total = loft_volume(*vertebra_patches(geo, "outline"))
    inner = loft_volume(*vertebra_patches(geo, "inner", cortex_thickness))
    alpha = np.linspace(0.0, 2.0 * np.pi, 8 * N_ALPHA, endpoint=False)
    a_sup = polygon_area(geo.superior.offset(alpha, cortex_thickness))
    a_inf = polygon_area(geo.inferior.offset(alpha, cortex_thickness))
    ep = endplate_thickness * (a_sup + a_inf)
    return dict(total=total, cortex=total - inner, endplate=ep, cancellous=inner - ep)


def disc_volumes(lower_geo, upper_geo, frame_lower, frame_upper, cortex_thickness, nucleus):
    """Analytic disc and nucleus volumes between two placed vertebrae.

    ``frame_*`` = (R, origin) local -> global; ``nucleus`` = (fraction, offset).
    """
    _, top_of_lower = vertebra_patches(lower_geo, "outline", frame=frame_lower)
    bottom_of_upper, _ = vertebra_patches(upper_geo, "outline", frame=frame_upper)
    # disc: bottom surface = lower's superior, top = upper's inferior
    disc = loft_volume(top_of_lower, bottom_of_upper)

    def nucleus_patch(outline, zfun, frame):
        R, o = frame

        def patch(sig, alpha):
            N, c = nucleus_curve(outline, alpha, cortex_thickness, *nucleus)
            xy = c + sig[:, None, None] * (N - c)[None]
            p = np.concatenate([xy, zfun(xy)[..., None]], axis=-1)
            return p @ R.T + o
        return patch

    nb = nucleus_patch(lower_geo.superior, lower_geo.z_superior, frame_lower)
    nt = nucleus_patch(upper_geo.inferior, upper_geo.z_inferior, frame_upper)
    return dict(total=disc, nucleus=loft_volume(nb, nt), annulus=disc - loft_volume(nb, nt))


def hex_jacobians(points, cells):
    """Independent check: det J at the 2x2x2 Gauss points (m, 8) and the scaled Jacobian (m,)."""
    X = points[cells]                                                # (m, 8, 3)
    J = np.einsum("qak,mai->mqik", HEX8.gradients, X)                # (m, q, 3, 3): dx_i/dxi_k
    det = np.linalg.det(J)
    Jc = np.einsum("qak,mai->mqik", HEX8.corner_gradients, X)
    norms = np.linalg.norm(Jc, axis=2).prod(axis=2)                  # column norms
    scaled = (np.linalg.det(Jc) / norms).min(axis=1)
    return det, scaled
