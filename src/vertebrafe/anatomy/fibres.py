"""Collagen fibres of the annulus fibrosus as tension-only springs embedded in the annulus cells.

The annulus is a stack of lamellae whose collagen fibres run at ``+theta`` and ``-theta`` to the
transverse (mid-disc) plane in alternate lamellae. Lamellae (15-25 across the annulus, 0.2-0.5 mm
thick) are thinner than any cell here, so every annulus cell carries both families (the criss-cross
pair of two adjacent lamellae), each with half the fibre volume fraction: the homogenised angle-ply
that keeps the disc mirror-symmetric and mesh-independent.

Per cell and family the fibre is one tension-only spring (:mod:`vertebrafe.springs`) through the
cell centre along ``a = cos(theta) t +- sin(theta) z``, ``t`` the circumferential direction of the
annulus ring and ``z`` the disc axis; its two ends are embedded points of the cell (shape-function
weights of its eight nodes) at ``xi = +-s J^-1 a`` (``J`` the cell's Jacobian at its centre, ``s`` such
that the larger reference coordinate is 0.5). With end distance ``L``, the stiffness
``k = E_f phi V / L^2`` (fibre modulus ``E_f``, volume fraction ``phi`` of the family, cell volume ``V``)
gives the strain energy ``E_f phi V eps_f^2 / 2`` of a smeared fibre family at fibre strain
``eps_f = delta / L``. Fibres carry tension only (they buckle in compression): the springs are
``"tension"`` springs, solved by the active-set loop.

Angle and modulus vary linearly with the radial position ``s`` of the cell across the annulus wall, from
``s = 0`` on the inner boundary of the annulus (the nucleus curve) to ``s = 1`` on its outer surface (the
outline of the disc); the published values are those of the inner and of the outer annulus
(:class:`AnnulusFibres`, docs/materials.md). ``s`` (:func:`annulus_position`) is the normalised length
along the radial line of the O-grid: every node of the annulus rings lies on the line of its boundary
parameter from the nucleus curve through the inner cortical curve to the outline, so the length from
the nucleus curve to the node divided by the line's whole length is a coordinate of the geometry, the
same for any ring count; a cell's ``s`` is the mean of its eight nodes' (the centre of a trilinear cell).
The angle field is then one field sampled at the cell centres on every mesh: it does not change with the
number of rings, and the thin outermost ring (under the cortical curve) takes the value of its own position.
A law by ring index (the innermost and the outermost ring at the inner and outer values whatever their
width) made a different field on every mesh: the volume-mean angle of the L4-L5 disc fell from 32.6 to
31.4 deg from 4 to 9 rings, and the extension of the fibre disc moved by 3.9 % with it (docs/validation.md,
"Mesh convergence of the fibre-reinforced disc"); as its rings narrow (they are evenly spaced along the
line) it tends to nearly the field used here (the outer value reached at the inner cortical curve instead
of the outer surface, the cortical thickness (0.4 mm by default) further in). The length along the line is used rather than the share of the
annulus volume inside the cell: it needs only the two boundaries and the line between them, and it puts
the inner and outer values on the inner and outer surfaces of the wall wherever the wall is thick or thin.

Two fibre laws (:attr:`AnnulusFibres.law`): ``"linear"``, the fibre stress ``E_f phi eps_f`` from zero strain;
``"exponential"`` (the default), the fibre term of the Holzapfel-Gasser-Ogden annulus model, stress per family
``4 k1 eps_f exp(4 k2 eps_f^2)`` (the derivative of ``k1 / (2 k2) (exp(k2 (I4 - 1)^2) - 1)`` with
``I4 - 1 = 2 eps_f`` at small strain): a toe region that stiffens with stretch. It is applied as its
piecewise-linear interpolation at the fibre strains :data:`EXPONENTIAL_BREAKS` (continued with the last
slope beyond them): each fibre is a stack of tension springs on the same two ends, the first taut from
zero strain, each further one slack up to its break strain, the active-set loop finds which carry load.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..elements import hex8_shape, hex8_shape_gradients
from ..errors import InputError
from ..materials import GROUND_SUBSTANCE  # noqa: F401  (the fibres' ground substance: MaterialSet.annulus_matrix)
from .vertebra import REGION_CODES, cross_section_topology

__all__ = ["AnnulusFibres", "annulus_fibre_springs", "annulus_position", "FIBRE_SET", "nucleus_cavities", "lamina_stiffness",
           "tensile_modulus", "fibre_stress", "EXPONENTIAL_BREAKS", "GROUND_SUBSTANCE"]

#: Name of the spring set that holds the annulus fibres.
FIBRE_SET = "annulus_fibres"


#: Fibre strains at which the ``"exponential"`` law is interpolated (its piecewise-linear form).
EXPONENTIAL_BREAKS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.10)

FIBRE_LAWS = ("linear", "exponential")


@dataclass(frozen=True)
class AnnulusFibres:
    """Fibre reinforcement of the annulus (both families in every annulus cell).

    angle_inner, angle_outer : deg to the transverse plane at the inner boundary of the annulus (its radial
        position ``s = 0``, the nucleus curve) and at its outer surface (``s = 1``), linear in ``s`` between
        them (:func:`annulus_position`; the published values are means of the inner and the outer annulus).
        Defaults 37 and 26 deg: the regional means of Malandrino, Noailly & Lacroix 2013 (CMBBE 16:923;
        posterior/anterior 43/31 deg inner, 28/23 deg outer from the circumferential axis, in line with
        Cassidy et al. 1989), i.e. about +-30 deg overall as in Elliott & Setton's human lumbar data.
    modulus_inner, modulus_outer : fibre Young's modulus (MPa) at the inner boundary and the outer surface of
        the annulus, linear in ``s`` as the angle (used by the ``"linear"`` law).
        Defaults 360 and 550 MPa (five fibre layers 360/408/455/503/550 MPa inner to outer,
        Hindawi BMRI 2013 Table 1; 357.5-550 MPa by layer in Clin Biomech 2014, PMC3943591 Table 1).
    volume_fraction : fibre volume fraction of the annulus (both families together), default 0.16
        (Shirazi-Adl et al. 1986, Spine 11:914, as used by later lumbar models) [memory].
    law : ``"exponential"`` (default: the fibre term of the Holzapfel-Gasser-Ogden annulus, ``k1``, ``k2``,
        the same in every ring; see the module) or ``"linear"`` (modulus and volume fraction above, no toe
        region). The toe region of the exponential law was chosen for the disc's torsion (the linear fibres
        left the disc-only axial rotation 2.4 times stiffer than measured); docs/validation.md.
    k1, k2 : MPa and -, of the ``"exponential"`` law. Defaults 2.8 MPa and 90: O'Connell, Sen & Elliott 2012
        (Biomech Model Mechanobiol 11:493, human annulus, biaxial tests), which is also the median of the nine
        published annulus sets compiled by Gruber et al. 2024 (k1 0.30-179 MPa, k2 10-648; repository
        GruberGabriel/ComparativeAnalysisFEModelsIVD, ``MaterialParameter/K1Annulus.txt``, ``K2Annulus.txt``).
    """

    angle_inner: float = 37.0
    angle_outer: float = 26.0
    modulus_inner: float = 360.0
    modulus_outer: float = 550.0
    volume_fraction: float = 0.16
    law: str = "exponential"
    k1: float = 2.8
    k2: float = 90.0

    def __post_init__(self):
        if self.law not in FIBRE_LAWS:
            raise InputError(f"fibres.law = {self.law!r}; allowed: {', '.join(map(repr, FIBRE_LAWS))}")
        for name, hi in (("k1", 1e4), ("k2", 1e4)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 < v <= hi):
                raise InputError(f"fibres.{name} = {v!r}; allowed range (0, {hi:g}]")
        for name in ("angle_inner", "angle_outer"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 90.0):
                raise InputError(f"fibres.{name} = {v!r} deg; allowed range [0, 90]")
        for name in ("modulus_inner", "modulus_outer"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 < v <= 1e5):
                raise InputError(f"fibres.{name} = {v!r} MPa; allowed range (0, 1e5]")
        v = self.volume_fraction
        if not (isinstance(v, (int, float)) and 0.0 < v < 1.0):
            raise InputError(f"fibres.volume_fraction = {v!r}; allowed range (0, 1)")

    def angle(self, position):
        """Fibre angle (deg to the transverse plane) at the radial position ``position`` (scalar or array, ``s``
        of :func:`annulus_position`: 0 the inner boundary of the annulus, 1 its outer surface)."""
        return self.angle_inner + (self.angle_outer - self.angle_inner) * np.asarray(position, dtype=float)


def _fibre_voigt(angle_deg, sign):
    """Voigt vector ``m`` (xx, yy, zz, xy, yz, xz; engineering shears) of the fibre direction
    ``a = (cos, 0, +-sin)`` in axes x circumferential, y radial, z axial: fibre strain = ``m . eps``."""
    t = np.radians(angle_deg)
    a = np.array([np.cos(t), 0.0, sign * np.sin(t)])
    return np.array([a[0] ** 2, a[1] ** 2, a[2] ** 2, a[0] * a[1], a[1] * a[2], a[0] * a[2]])


def _slopes(spec, position):
    """Tangent moduli (MPa) of one fibre family's stress-strain law on each segment between
    :data:`EXPONENTIAL_BREAKS` (one segment for the linear law) at the radial position ``position`` (scalar or
    array), with the segments' starting strains."""
    position = np.asarray(position, dtype=float)
    if spec.law == "linear":
        E = spec.modulus_inner + (spec.modulus_outer - spec.modulus_inner) * position
        return [0.5 * spec.volume_fraction * E], [0.0]
    e = np.asarray(EXPONENTIAL_BREAKS)
    sig = 4.0 * spec.k1 * e * np.exp(4.0 * spec.k2 * e ** 2)
    slope = np.diff(sig) / np.diff(e)
    return [np.broadcast_to(g, position.shape).astype(float) for g in slope], list(e[:-1])


def fibre_stress(spec, strain, position=1.0):
    """Stress (MPa, tissue level) that one fibre family carries at fibre strain ``strain`` (array-like) at
    the radial position ``position`` across the annulus wall (``s`` of :func:`annulus_position`): the law the
    springs of :func:`annulus_fibre_springs` realise (tension only, zero at and below zero strain)."""
    eps = np.asarray(strain, dtype=float)
    slopes, starts = _slopes(spec, position)
    out = np.zeros(np.broadcast_shapes(eps.shape, np.shape(position)))
    prev = 0.0
    for g, e0 in zip(slopes, starts):
        out = out + (g - prev) * np.clip(eps - e0, 0.0, None)
        prev = g
    return out


def lamina_stiffness(spec, matrix, position=1.0, taut=True, fibre_strain=0.0):
    """Homogenised elasticity ``(6, 6)`` (MPa) of the fibre-reinforced annulus at the radial position
    ``position`` (``s`` of :func:`annulus_position`: 0 the inner boundary of the annulus, 1 its outer surface),
    axes x circumferential, y radial, z axial; for the
    ``"exponential"`` law, the tangent stiffness with both fibre families at ``fibre_strain`` (>= 0; default 0,
    the toe region: the slope of the law's segment that holds it).

    The energy the embedded springs of :func:`annulus_fibre_springs` store under a uniform strain (exact,
    ``tests/anatomy/test_fibres.py``): ``C = C_matrix + sum_families E_f (phi / 2) m m^T`` with ``m`` the
    fibre direction's Voigt vector; with ``taut=False`` the fibres are slack (``C = C_matrix``).
    ``matrix``: the ground substance, a ``(6, 6)`` elasticity or an object with ``elasticity()``.
    """
    C = np.array(matrix.elasticity() if hasattr(matrix, "elasticity") else matrix, dtype=float)
    if not taut:
        return C
    angle = spec.angle(position)
    if not (np.isfinite(fibre_strain) and fibre_strain >= 0.0):
        raise InputError(f"fibre_strain = {fibre_strain!r}; allowed: a number >= 0")
    slopes, starts = _slopes(spec, position)
    g = float(slopes[int(np.searchsorted(starts, fibre_strain, side="right")) - 1])
    for sign in (1.0, -1.0):
        m = _fibre_voigt(angle, sign)
        C += g * np.outer(m, m)
    return C


def tensile_modulus(spec, matrix, position=1.0, direction="circumferential", fibre_strain=0.0):
    """Uniaxial (tangent) tensile modulus (MPa) of the fibre-reinforced annulus along ``direction``
    (``"circumferential"`` or ``"axial"``), free to contract sideways: the set-up of tissue tensile tests;
    ``position``: the radial position (see :func:`lamina_stiffness`); ``fibre_strain``: where on the fibre law.

    Both fibre families are equally strained (mirror symmetry); they carry load only if the strain of
    the fibre-reinforced solution stretches them, otherwise the modulus is the matrix's.
    """
    k = {"circumferential": 0, "axial": 2}.get(direction)
    if k is None:
        raise InputError(f"direction = {direction!r}; allowed: 'circumferential', 'axial'")
    angle = spec.angle(position)
    for taut in (True, False):
        eps = np.linalg.solve(lamina_stiffness(spec, matrix, position, taut, fibre_strain), np.eye(6)[k])
        if not taut or _fibre_voigt(angle, 1.0) @ eps > 0.0:
            return float(1.0 / eps[k])


def _disc_axis(segment, disc):
    """Unit disc axis ``(3,)``: the mean of the z axes of the two adjacent vertebrae."""
    upper, lower = disc.split("-")
    z = segment.frames[upper][0][:, 2] + segment.frames[lower][0][:, 2]
    return z / np.linalg.norm(z)


def annulus_fibre_springs(segment, spec=None):
    """The :class:`~vertebrafe.springs.SpringSet` of the annulus fibres of every disc of ``segment``
    (its current mesh, so fractured or restored geometry is used as it is); groups per disc.

    ``spec``: :class:`AnnulusFibres` (default: the segment's ``fibres``).
    """
    from ..springs import law_springs

    spec = spec or segment.fibres
    if not isinstance(spec, AnnulusFibres):
        raise InputError(f"fibres = {spec!r}; expected a vertebrafe.anatomy.AnnulusFibres")
    mesh = segment.mesh
    position = annulus_position(segment)              # checks the layered O-grid mesh
    region = mesh.cell_data["region"]
    level = mesh.cell_data["level"]
    names = mesh.tag_names["level"]
    annulus = region == REGION_CODES["annulus"]
    pts = mesh.points
    x = pts[mesh.cells]                                   # (m, 8, 3)
    centre = x.mean(axis=1)
    cells_all, dirs_all, groups, positions, group_names = [], [], [], [], {}
    for gi, disc in enumerate(segment.discs):
        code = next(c for c, n in names.items() if n == disc)
        sel = np.flatnonzero(annulus & (level == code))
        if sel.size == 0:
            continue
        z = _disc_axis(segment, disc)
        c0 = centre[(level == code)].mean(axis=0)
        r = centre[sel] - c0
        r -= np.outer(r @ z, z)
        xs = x[sel]
        e1 = xs[:, 1] - xs[:, 0] + xs[:, 2] - xs[:, 3]
        e2 = xs[:, 3] - xs[:, 0] + xs[:, 2] - xs[:, 1]
        rn = r / np.linalg.norm(r, axis=1, keepdims=True)
        c1 = np.abs(np.einsum("ki,ki->k", _unit(e1), rn))
        c2 = np.abs(np.einsum("ki,ki->k", _unit(e2), rn))
        t = np.where((c1 < c2)[:, None], e1, e2)
        t -= np.outer(t @ z, z)
        t = _unit(t)
        t *= np.sign(np.einsum("ki,ki->k", t, np.cross(z, r)))[:, None]       # anticlockwise seen from above
        theta = np.radians(spec.angle(position[sel]))
        for sign in (1.0, -1.0):
            cells_all.append(sel)
            dirs_all.append(np.cos(theta)[:, None] * t + sign * np.sin(theta)[:, None] * z)
            groups.append(np.full(sel.size, gi))
            positions.append(position[sel])
        group_names[gi] = disc
    if not cells_all:
        raise InputError("the segment has no annulus cells to reinforce")
    cells = np.concatenate(cells_all)
    a = np.concatenate(dirs_all)
    xs = x[cells]
    J = np.einsum("ai,kaj->kji", hex8_shape_gradients(np.zeros((1, 3)))[0], xs)     # J[k, i, j] = dx_i / dxi_j
    dxi = np.linalg.solve(J, a[:, :, None])[:, :, 0]
    dxi *= 0.5 / np.abs(dxi).max(axis=1, keepdims=True)
    Na = hex8_shape(-dxi)
    Nb = hex8_shape(dxi)
    nodes = mesh.cells[cells]
    xa = np.einsum("ka,kai->ki", Na, xs)
    xb = np.einsum("ka,kai->ki", Nb, xs)
    L = np.linalg.norm(xb - xa, axis=1)
    V = mesh.cell_volumes()[cells]
    phi = 0.5 * spec.volume_fraction if spec.law == "linear" else 1.0
    slopes, starts = _slopes(spec, np.concatenate(positions))
    # the law's segments: the first taut from zero strain, each further one (the stiffening of its segment) from its
    # starting strain on
    dk = [slopes[0]] + [b - a for a, b in zip(slopes[:-1], slopes[1:])]
    s = law_springs(pts, nodes, nodes, np.stack([d * V / L ** 2 for d in dk]), np.outer(starts, L),
                    weights_a=Na, weights_b=Nb, area=phi * V / L, name=FIBRE_SET, group=np.concatenate(groups),
                    group_names=group_names)
    s.host_cells = cells[s.member]
    return s


def annulus_position(segment):
    """Radial position ``s`` ``(n_cells,)`` of every annulus cell across the annulus wall of ``segment`` (its
    current mesh): 0 on the nucleus curve, 1 on the outer surface; NaN for the other cells.

    Per node layer of the layered O-grid and per boundary parameter, the radial line is the polyline
    through the nodes of the rings from the nucleus curve (ring ``n_transition``) to the outline (the last
    ring); a node's ``s`` is its length along that line from the nucleus curve over the line's whole
    length, a cell's the mean of its eight nodes' (see the module: the same field for any ring count).
    """
    mesh = segment.mesh
    counts = segment.counts
    topo = cross_section_topology(counts)
    q = len(topo["quads"])
    n_stack = getattr(segment, "stack_cells", mesh.n_cells)
    if n_stack % q:
        raise InputError("annulus fibres need the layered O-grid mesh of vertebrafe.segment")
    n2 = counts.n_nodes
    n_layers = n_stack // q + 1
    lines = np.stack(topo["ring_nodes"][counts.n_transition:])           # (rings + 1, 4 m): nucleus curve -> outline
    layer0 = (np.arange(n_layers) * n2)[:, None, None]
    idx = layer0 + lines[None]                                            # (layers, rings + 1, 4 m) point ids
    x = mesh.points[idx]
    step = np.linalg.norm(np.diff(x, axis=1), axis=-1)
    along = np.concatenate([np.zeros_like(step[:, :1]), np.cumsum(step, axis=1)], axis=1)
    node_s = np.full(mesh.n_points, np.nan)
    node_s[idx] = along / along[:, -1:]
    out = np.full(mesh.n_cells, np.nan)
    annulus = np.flatnonzero(mesh.cell_data["region"][:n_stack] == REGION_CODES["annulus"])
    out[annulus] = node_s[mesh.cells[annulus]].mean(axis=1)
    return out


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def nucleus_cavities(segment, bulk_modulus=None):
    """One :class:`~vertebrafe.cavity.FluidCavity` per disc, bounded by the outer faces of its nucleus
    cells (named ``"<disc>:nucleus"``): the nucleus as a fluid-filled cavity with one uniform pressure.
    ``bulk_modulus`` (MPa) defaults to water's (2200 MPa)."""
    from ..elements import HEX8_FACES
    from ..cavity import WATER_BULK_MODULUS, FluidCavity, cavity_faces

    mesh = segment.mesh
    K = WATER_BULK_MODULUS if bulk_modulus is None else bulk_modulus
    names = mesh.tag_names["level"]
    nucleus = mesh.cell_data["region"] == REGION_CODES["nucleus"]
    vol = mesh.cell_volumes()
    out = []
    for disc in segment.discs:
        code = next(c for c, n in names.items() if n == disc)
        sel = nucleus & (mesh.cell_data["level"] == code)
        if sel.any():
            out.append(FluidCavity(f"{disc}:nucleus", mesh.points, cavity_faces(mesh.cells[sel], HEX8_FACES),
                                   float(vol[sel].sum()), K))
    return out
