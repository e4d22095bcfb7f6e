"""Multi-level spinal segments: vertebrae and discs stacked into one conforming hex8 mesh.

:func:`segment` builds every vertebral body and disc of a contiguous run of levels with one O-grid
cross-section topology, places each vertebra along the sagittal curve given by the segmental angles
(:func:`~vertebrafe.anatomy.disc.stack_frame`) and joins consecutive pieces through their shared node
layers: the superior endplate layer of a vertebra *is* the bottom layer of the disc above it, and the
inferior endplate layer of the upper vertebra its top layer. No merging by distance and no tied contact
are needed.

Global frame: the local frame of the **lowest** (most caudal) vertebra -- origin at the centre of its
inferior rim plane, +x right, +y anterior, +z superior; the levels above lean according to the
accumulated wedge and segmental angles. Nodes are numbered layer by layer from the bottom up.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ..deprecation import moved
from ..errors import InputError
from .assignment import resolve_materials, with_materials
from .fibres import AnnulusFibres, annulus_fibre_springs, nucleus_cavities
from .grading import grading_curves
from .disc import DISC_REFINEMENT, disc_layer_count, disc_layers, disc_rim_heights, disc_regions, disc_wedge, stack_frame
from .levels import (DiscDimensions, adjacent_discs, level_dimensions, level_order, segment_names,
                     vertebra_names)
from .vertebra import (DEFAULT_CORTEX_THICKNESS, DEFAULT_ELEMENT_SIZE, DEFAULT_ENDPLATE_THICKNESS,
                       REGION_CODES, ZONE_CORTEX, VertebraGeometry, cross_section_topology, extrude,
                       grid_counts, make_mesh, posterior_wall_quads, vertebra_layers)

__all__ = ["Segment", "segment"]

#: the material assignment moved to :mod:`vertebrafe.anatomy.assignment`; the old name warns.
__getattr__ = moved(__name__, "vertebrafe.anatomy.assignment", ("cell_elasticity",))

REGION_NAMES = {v: k for k, v in REGION_CODES.items()}


@dataclass
class Segment:
    """A meshed spinal segment.

    Attributes
    ----------
    mesh : vertebrafe.Mesh
        Cells tagged ``region`` (``cortex``, ``endplate``, ``cancellous``, ``annulus``, ``nucleus``) and
        ``level`` (``T12``, ``T12-L1``, ``L1``, ...); node sets and face sets per endplate:
        ``"L1:superior"``, ``"L1:inferior"`` (outward from the bone); face sets ``"L1:lateral"`` and
        ``"L1:posterior_wall"``; ``"segment:superior"`` / ``"segment:inferior"`` are the top endplate of
        the most cranial and the bottom endplate of the most caudal vertebra.
    levels : tuple of str
        Vertebrae, **cranial first** (``('T12', 'L1', 'L2')``).
    discs : tuple of str
        Discs, cranial first.
    dimensions : dict
        ``{name: VertebraDimensions or DiscDimensions}`` actually used.
    frames : dict
        ``{vertebra: (R (3, 3), origin (3,))}``: local -> global, ``x_global = R @ x_local + origin``.
    materials : MaterialSet or mapping or None
    elasticity : ndarray ``(m, 6, 6)`` or None
        Per-cell elasticity (MPa) once materials are given (:meth:`with_materials`).
    element_size, cortex_thickness, endplate_thickness, n_cortex_layers, disc_refinement, grading
        The meshing parameters of :func:`segment` (mm, mm, mm, -, -, tuple of
        :class:`~vertebrafe.anatomy.grading.GradedCurve`, empty without in-plane grading).
    history : tuple
        Clinical operations applied so far, oldest first (:class:`vertebrafe.clinical.Operation`
        records: fracture, vertebroplasty, kyphoplasty); empty for an intact segment.
    fibres : AnnulusFibres or None
        Tension-only collagen fibres of the annulus (:mod:`vertebrafe.anatomy.fibres`), or None for the
        isotropic annulus; :meth:`spring_sets` builds them on the current mesh.
    nucleus : str
        ``"solid"``: the nucleus cells alone (nearly incompressible solid); ``"fluid"``: the nucleus cells
        plus a fluid-filled cavity per disc with one uniform pressure (:func:`nucleus_cavities`).
    nucleus_prepressure : float
        The swelling (osmotic) pressure of every nucleus at rest, MPa (0: a stress-free disc at rest); the
        solve pre-stresses the disc so that the unloaded nucleus carries it (:mod:`vertebrafe.swelling`).
        :func:`segment` and :func:`vertebrafe.image_segment` set it (by default :data:`LYING_PREPRESSURE` where
        the discs have nucleus cells, :func:`resolve_prepressure`); a Segment built field by field has 0.
    posterior : PosteriorColumn or None
        The posterior elements (:mod:`vertebrafe.anatomy.posterior`: arches appended after the layered
        body-disc stack, their attachment nodes); None for the body-disc-body model. With them,
        :meth:`spring_sets` adds the facet joints and the ligaments (:mod:`vertebrafe.anatomy.ligaments`).
    source : dict or None
        Where the geometry and densities came from: None for the parametric model; for image-based
        segments (:func:`vertebrafe.image_segment`) the files, calibration, vBMD per level and fit residuals.
    """

    mesh: object
    levels: tuple
    discs: tuple
    dimensions: dict
    frames: dict
    counts: object
    element_size: float
    cortex_thickness: float
    endplate_thickness: float
    n_cortex_layers: int = 1
    disc_refinement: float = DISC_REFINEMENT
    grading: tuple = ()
    materials: object = None
    elasticity: np.ndarray = field(default=None, repr=False)
    history: tuple = ()
    fibres: object = None
    nucleus: str = "solid"
    posterior: object = None
    source: dict = None
    nucleus_prepressure: float = 0.0

    def spring_sets(self):
        """Fresh spring sets of this segment, built on the current mesh: the annulus fibres
        (:class:`~vertebrafe.springs.SpringSet`, all initially taut), with posterior elements and at least
        one disc the facet joints and ligaments, and, with ``nucleus="fluid"``, one
        :class:`~vertebrafe.cavity.FluidCavity` per disc."""
        out = [annulus_fibre_springs(self)] if self.fibres is not None else []
        if self.posterior is not None and self.discs:
            from .ligaments import facet_pairs, facet_springs, ligament_springs
            pairs = facet_pairs(self)
            out += [facet_springs(self, pairs), ligament_springs(self, pairs)]
        return out + (nucleus_cavities(self) if self.nucleus == "fluid" else [])

    def vertebra_of_cells(self):
        """Index into :attr:`levels` of the vertebra of every cell (body and posterior elements), -1 for disc
        cells: ``(m,)`` int64."""
        names = self.mesh.tag_names["level"]
        index = {v: i for i, v in enumerate(self.levels)}
        table = np.full(max(names) + 1, -1, np.int64)
        for code, name in names.items():
            table[code] = index.get(name, -1)
        return table[self.mesh.cell_data["level"]]

    @property
    def stack_cells(self):
        """Number of cells of the layered body-disc stack (``counts.n_cells`` per cell layer); the cells of
        the posterior elements, if any, follow them, then the cells an operation appended (a pillowed cement
        bolus: :mod:`vertebrafe.clinical.pillowed`, cell field ``layered_cell``)."""
        if self.posterior is not None:
            return self.posterior.stack_cells
        return self.mesh.n_cells - self._appended("appended_cells")

    @property
    def stack_points(self):
        """Number of nodes of the layered stack (``counts.n_nodes`` per node layer); arch nodes follow, then
        the nodes an operation appended."""
        if self.posterior is not None:
            return self.posterior.stack_points
        return self.mesh.n_points - self._appended("appended_nodes")

    def _appended(self, key):
        return int(sum(op.results.get(key, 0) for op in (self.history or ())))

    @classmethod
    def from_mesh(cls, mesh, bmd=None, materials=None, density=None, regions=None, levels=None):
        """A segment from an external hex8, tet4 or tet10 mesh with region and level tags (file, meshio or
        vertebrafe mesh): tags ``region`` / ``level`` with names or gmsh physical names ``"LEVEL:REGION"``,
        ``bmd`` one vBMD or ``{vertebra: vBMD}`` or ``density`` a per-cell vBMD array of the mesh; see
        :mod:`vertebrafe.anatomy.external`."""
        from .external import segment_parts

        fields, mats = segment_parts(mesh, bmd=bmd, materials=materials, density=density, regions=regions,
                                     levels=levels)
        return cls(**fields).with_materials(mats)

    @property
    def names(self):
        """All pieces cranial first: ``('T12', 'T12-L1', 'L1', ...)``."""
        return segment_names(self.levels)

    @property
    def node_sets(self):
        return self.mesh.node_sets

    @property
    def face_sets(self):
        return self.mesh.face_sets

    @property
    def n_dofs(self):
        return 3 * self.mesh.n_points

    def with_materials(self, materials):
        """A new segment with ``materials`` (a MaterialSet, LevelMaterials or mapping; see
        :func:`~vertebrafe.anatomy.assignment.cell_elasticity`), its per-cell ``elasticity`` and a mesh
        copy with the ``modulus`` cell field (axial modulus ``1 / S_zz``, MPa); this one is not changed.
        Only for an intact segment (InputError after clinical operations)."""
        return with_materials(self, materials)

    def attach_materials(self, materials):
        """Deprecated: changes this segment and its mesh in place; use ``seg = seg.with_materials(materials)``.
        Returns ``self``."""
        warnings.warn("Segment.attach_materials is deprecated (it changes the segment and its mesh); use "
                      "seg = seg.with_materials(materials)", DeprecationWarning, stacklevel=2)
        new = with_materials(self, materials)
        self.materials, self.elasticity = new.materials, new.elasticity
        self.mesh.set_cell_data("modulus", new.mesh.cell_data["modulus"])
        return self

    def geometry(self):
        """Derived geometry per piece, cranial first (list of dicts): heights (mm) and angles (deg) of the
        dimensions the mesh was built from (the level table with its overrides), so a fracture or a
        kyphoplasty does not change them; :func:`vertebrafe.clinical.measure` measures the mesh itself.

        Angles are **positive when kyphotic** (anterior side shorter), as in
        :func:`vertebrafe.clinical.measure`: ``wedge_deg`` of a vertebra or disc and, for a disc,
        ``segmental_kyphosis_deg`` (minus the lordotic ``segmental_angle`` of its dimensions).
        """
        rows = []
        for name in self.names:
            d = self.dimensions[name]
            if isinstance(d, DiscDimensions):
                up, lo = self.dimensions[d.upper], self.dimensions[d.lower]
                a, p = disc_rim_heights(d, lo, up)
                rows.append(dict(name=name, kind="disc", wedge_deg=-disc_wedge(d, up),
                                 segmental_kyphosis_deg=-d.segmental_angle, anterior_height_mm=a,
                                 posterior_height_mm=p, central_height_mm=d.rim_height + up.inferior_concavity
                                 + lo.superior_concavity))
            else:
                rows.append(dict(name=name, kind="vertebra", wedge_deg=-d.wedge, segmental_kyphosis_deg=None,
                                 anterior_height_mm=d.anterior_height, posterior_height_mm=d.posterior_height,
                                 central_height_mm=d.central_height))
        return rows

    def summary(self):
        """Per level and region: ``cells``, ``volume_mm3``, ``mean_modulus_MPa`` (volume-weighted axial
        modulus; NaN without materials). A pandas DataFrame (list of dicts if pandas is missing),
        ordered cranial first."""
        mesh = self.mesh
        vol = mesh.cell_volumes()
        lev, reg = mesh.cell_data["level"], mesh.cell_data["region"]
        E = mesh.cell_data.get("modulus")
        key = lev * 100 + reg
        uniq, inv = np.unique(key, return_inverse=True)
        n = np.bincount(inv)
        v = np.bincount(inv, weights=vol)
        ev = np.bincount(inv, weights=vol * E) / v if E is not None else np.full(uniq.size, np.nan)
        ln, rn = mesh.tag_names["level"], mesh.tag_names["region"]
        rows = [dict(level=ln[int(k // 100)], region=rn[int(k % 100)], cells=int(c), volume_mm3=float(w),
                     mean_modulus_MPa=float(e)) for k, c, w, e in zip(uniq, n, v, ev)]
        try:
            import pandas as pd
        except ImportError:                                      # pragma: no cover
            return rows
        return pd.DataFrame(rows, columns=["level", "region", "cells", "volume_mm3", "mean_modulus_MPa"])

    def save(self, path, **kwargs):
        """Write the mesh (``.vtu`` keeps tags with names, node and face sets; see ``Mesh.save``)."""
        self.mesh.save(path, **kwargs)

    def __repr__(self):
        return (f"Segment({'-'.join((self.levels[0], self.levels[-1])) if len(self.levels) > 1 else self.levels[0]}: "
                f"{self.mesh.n_cells} cells, {self.mesh.n_points} nodes, element_size={self.element_size:g} mm)")


def _nucleus(name, dims):
    d = dims.get(name)
    if d is None:
        d = level_dimensions(name)
    return (d.nucleus_fraction, d.nucleus_offset)


def _keep_disc_wedges(dims, overrides, scale):
    """Disc below a vertebra with an overridden wedge: keep the table disc wedge (segmental angle =
    disc wedge + the new wedge of the upper vertebra) unless its segmental angle is overridden."""
    out = dict(dims)
    for name, d in dims.items():
        if not isinstance(d, DiscDimensions) or "segmental_angle" in overrides.get(name, {}):
            continue
        up = d.upper
        if up not in overrides:
            continue
        table_up = level_dimensions(up, scale=scale)
        if abs(dims[up].wedge - table_up.wedge) < 1e-12:
            continue
        angle = d.segmental_angle - table_up.wedge + dims[up].wedge
        try:
            new = level_dimensions(name, scale=scale, **{**overrides.get(name, {}), "segmental_angle": angle})
        except InputError as e:
            raise InputError(f"the wedge of {up} ({dims[up].wedge:.1f} deg, overridden) tilts disc {name} to a "
                             f"segmental angle of {angle:.1f} deg: {e}; override {name}'s segmental_angle") from None
        out[name] = dataclasses.replace(new, sources=MappingProxyType({**new.sources, "segmental_angle": "derived"}))
    return out


def segment(levels, bmd=None, element_size=DEFAULT_ELEMENT_SIZE, overrides=None, scale=1.0, materials=None,
            cortex_thickness=DEFAULT_CORTEX_THICKNESS, endplate_thickness=DEFAULT_ENDPLATE_THICKNESS,
            n_cortex_layers=1, disc_refinement=DISC_REFINEMENT, fibres=None, nucleus="solid", frames=None,
            posterior=True, grading=None, central_coarsening=3, annulus_refinement=1, nucleus_prepressure=None,
            articular_refinement=1):
    """Mesh a contiguous run of vertebrae with the discs between them.

    Parameters
    ----------
    levels : sequence of str or str
        Vertebrae, any order (``['T12', 'L1', 'L2']``) or a range ``'T12-L2'``; must be consecutive.
    bmd : float or dict, optional
        QCT trabecular vBMD (mg/cm^3), one value for every vertebra or ``{vertebra: vBMD}`` with one
        entry per vertebra (``{"T12": 70, "L1": 55, "L2": 72}``); with ``materials=None`` it attaches
        ``MaterialSet(bmd=bmd)`` or ``LevelMaterials(MaterialSet(bmd=<mean>), bmd)``. With a
        ``materials`` MaterialSet and a dict, that set's choices are kept and only the vBMD is per level.
    element_size : float
        Target cell size (mm) of cancellous bone and disc, and of the spacing along the outlines.
    overrides : dict, optional
        ``{name: {field: value}}`` per vertebra or disc, e.g. ``{"L1": {"anterior_height": 18.0},
        "T12-L1": {"rim_height": 5.0}}`` (see :func:`~vertebrafe.anatomy.levels.level_dimensions`).
        A vertebra whose wedge changes (heights or depths overridden) keeps the wedge of the disc below
        it: that disc's segmental angle follows the vertebra (source ``"derived"``) unless the disc's
        ``segmental_angle`` is overridden too; so a wedged vertebra tilts the segment above it instead
        of making the disc compensate.
    scale : float
        Global length factor on the table values.
    materials : MaterialSet or mapping, optional
        See :func:`~vertebrafe.anatomy.assignment.cell_elasticity`; the materials are given to the meshed
        geometry by :func:`~vertebrafe.anatomy.assignment.with_materials`.
    cortex_thickness, endplate_thickness : float
        Cortical shell and bony endplate thickness (mm).
    n_cortex_layers : int
        Element layers across the cortical shell.
    disc_refinement : float
        Disc element layers per ``element_size`` of disc height (default 2; see
        :func:`~vertebrafe.anatomy.disc.disc_layer_count`).
    fibres : bool or AnnulusFibres, optional
        Reinforce the annulus with tension-only collagen fibres (:mod:`vertebrafe.anatomy.fibres`): True
        for the published defaults of :class:`AnnulusFibres`, or an instance; None/False (default): none.
        The annulus cells take the MaterialSet's entry of the disc model: with fibres ``annulus_matrix``
        (the ground substance between the fibres, default 0.966 MPa: the validated disc, docs/validation.md),
        without ``annulus`` (the fibre-free disc's homogenised annulus, default 4.2 MPa); see
        :meth:`MaterialSet.for_disc <vertebrafe.materials.MaterialSet.for_disc>`. A single vertebra has no
        disc and no fibres.
    nucleus : ``"solid"`` or ``"fluid"``
        ``"solid"`` (default): the nucleus cells alone (nu = 0.499); ``"fluid"`` adds a fluid-filled cavity
        per disc (water's bulk modulus) around the nucleus cells: one uniform, nearly incompressible
        pressure (see docs/anatomy.md; such models cannot be exported to CalculiX or FEBio input files).
    nucleus_prepressure : float or None
        Swelling (osmotic) pressure of every nucleus at rest, MPa, 0 to 0.5. The solve pre-stresses each disc
        so that its unloaded nucleus carries this pressure, the annulus, endplates and fibres held in tension
        by it (:mod:`vertebrafe.swelling`); motions are measured from that rest state. The published value is
        the pressure of the lying subject, 0.10-0.12 MPa (Wilke et al. 1999; docs/materials.md). None (the
        default): :data:`LYING_PREPRESSURE` (0.10 MPa) where the segment's discs have nucleus cells, 0 where it
        has none (a single vertebra) (:func:`resolve_prepressure`); 0: a stress-free disc at rest (in vitro
        protocols without swelling). ``simulate.prestressed_model`` gives the model with the pre-stress for
        ``Model.export`` (docs/interop.md). A single vertebra (no disc) accepts only 0 or None. The strengths
        between plates and the factor of risk do not depend on it (:mod:`vertebrafe.post.strength`).
    frames : dict, optional
        ``{vertebra: (R (3, 3), origin (3,))}`` placing each vertebra's local frame in the global one
        (``x_global = R @ x_local + origin``), e.g. as measured in an image
        (:func:`vertebrafe.image.image_segment`); the discs fill the gaps between the endplates as placed.
        Default: the lowest vertebra at the origin and the others stacked by the disc dimensions
        (:func:`~vertebrafe.anatomy.disc.stack_frame`).
    posterior : bool
        Add the posterior elements (pedicles, laminae, spinous, transverse and articular processes, region
        ``posterior``, sharing nodes with the bodies' posterior walls; :mod:`vertebrafe.anatomy.posterior`),
        the facet joints (compression-only) and the ligaments (tension-only), see
        :mod:`vertebrafe.anatomy.ligaments`; the default. False: the body-disc-body model of in vitro
        disc-only tests.
    grading : GradedCurve or sequence of GradedCurve, optional
        In-plane grading of the shared cross-section grid toward ellipses given in mm in every vertebra's
        local frame (:mod:`vertebrafe.anatomy.grading`): nodes are moved, no cell is added, so the cells
        next to each curve are ``factor`` times their ungraded size across it at every element size, e.g.
        around the edges of the balloons' contact faces of a kyphoplasty
        (:func:`vertebrafe.clinical.contact_face_grading`). Default None: the uniform grid.
    central_coarsening : {3, 1}
        Angular coarsening ratio (cells of the nucleus curve per central cell) of the cross-section grid
        inside the nucleus curve, i.e. of its central block and transition rings (docs/anatomy.md, "O-grid
        cross-section"): 3 (default) makes the central cells about ``element_size``; 1 keeps the
        outline's angular count all the way in (the uniform O-grid: central cells about 2.5 times smaller,
        about 1.5 times the cells per layer). 1 lowers the first-order mesh error of a kyphoplasty's in-situ
        stiffness by about a third (2 -> 1 mm: -5.2 % instead of -7.2 %; docs/validation.md, "BKP in situ:
        what the drift needs"). Recorded in ``counts``.
    annulus_refinement : int
        Rings of the cross-section grid between the nucleus curve and the inner cortical curve, as a multiple
        (1-4) of their count at ``element_size`` (radial size about ``element_size / annulus_refinement``;
        default 1). With ``central_coarsening=1`` and 2 it lowers the first-order mesh error of a
        kyphoplasty's in-situ stiffness further, whose columns reach into these rings (2 -> 1 mm: -4.3 %
        instead of -5.2 %; docs/validation.md, "The face edge refined in both directions"). Recorded in
        ``counts`` (``n_annulus``).
    articular_refinement : int
        Cell layers of the articular processes beyond the bodies (below them the inferior processes, above
        them the superior ones, which carry the facet joints' faces), as a multiple (1-4) of their count at
        ``element_size`` (their height about ``element_size / articular_refinement``; default 1); only with
        posterior elements. With 2 the capsular ligament's force under extension and the facet forces,
        posterior shares and capsules under lateral bending of the 2 mm T12-L2 segment come within 2.5 % of
        the 1 mm default mesh's, for 1.7 % more unknowns; the 1 mm values move with it too, so it lowers the
        2 -> 1 mm changes without removing them (extension capsules 5.8 / 3.6 % instead of 6.6 / 7.4 %;
        docs/validation.md, "Which part of the arch: the articular processes' layers"). Recorded in
        ``posterior.articular_refinement``.

    Returns
    -------
    Segment
    """
    order = level_order(levels)                                  # cranial first
    names = segment_names(order)
    fibre_spec = _fibres(fibres)                    # checked even without a disc to reinforce
    prepressure = None if nucleus_prepressure is None else check_prepressure(nucleus_prepressure)
    from .posterior import check_articular_refinement
    articular_refinement = check_articular_refinement(articular_refinement)
    if articular_refinement != 1 and not _posterior_flag(posterior):
        raise InputError(f"articular_refinement = {articular_refinement!r} needs the posterior elements "
                         "(posterior=True); without them leave it at 1")
    if prepressure and len(order) == 1:
        raise InputError(f"nucleus_prepressure = {nucleus_prepressure!r} MPa on the single vertebra {order[0]}: it has "
                         "no disc whose nucleus could carry it; give 0, or levels with a disc between them")
    curves = grading_curves(grading)
    materials = resolve_materials(bmd, materials, order)
    given_frames = _check_frames(frames, order)
    overrides = dict(overrides or {})
    bad = sorted(set(overrides) - set(names))
    if bad:
        raise InputError(f"overrides has {bad[0]!r}, which is not in this segment; allowed: {list(names)}")
    dims = _keep_disc_wedges({n: level_dimensions(n, scale=scale, **dict(overrides.get(n, {}))) for n in names},
                             overrides, scale)
    h = float(element_size)
    geos = {v: VertebraGeometry.from_dimensions(dims[v]) for v in order}
    nuc = {}
    fractions = []
    for v in order:
        above, below = adjacent_discs(v)
        nuc[v] = (_nucleus(above, dims), _nucleus(below, dims))
        fractions += [nuc[v][0][0], nuc[v][1][0]]
    outlines = [o for g in geos.values() for o in (g.superior, g.inferior)]
    counts = grid_counts(h, outlines, min(fractions), cortex_thickness, n_cortex_layers,
                         coarsening=_central_coarsening(central_coarsening), annulus_refinement=annulus_refinement)
    topo = cross_section_topology(counts)
    quads, zone = topo["quads"], topo["zone"]
    n2, q = counts.n_nodes, len(quads)

    # bottom-up: frames, node layers and per-gap descriptions
    frames = {}
    blocks = []                     # node layers in global coordinates, bottom-up, shared layers once
    gap_level, gap_kind = [], []    # per cell layer: level name, "endplate" / "cancellous" / "disc"
    first_layer = {}                # vertebra -> index of its inferior layer in the stack
    body_layers = {}                # vertebra -> number of its cell layers
    R, o = np.eye(3), np.zeros(3)
    n_layers = 0
    caudal_first = order[::-1]
    for i, v in enumerate(caudal_first):
        if i > 0:
            lower = caudal_first[i - 1]
            dname = f"{v}-{lower}"
            Rr, orr = stack_frame(dims[lower], dims[dname], dims[v])
            o = R @ orr + o
            R = R @ Rr
        if given_frames is not None:
            R, o = given_frames[v]
        frames[v] = (R.copy(), o.copy())
        layers, gap_region = vertebra_layers(geos[v], counts, h, cortex_thickness, endplate_thickness,
                                             nucleus_above=nuc[v][0], nucleus_below=nuc[v][1], grading=curves)
        layers = layers @ R.T + o
        if i > 0:
            nd = disc_layer_count(dims[dname], h, disc_refinement)
            dl = disc_layers(blocks[-1][-1], layers[0], nd)
            blocks.append(dl[1:-1])
            n_layers += nd - 1
            gap_level += [dname] * nd
            gap_kind += ["disc"] * nd
        first_layer[v] = n_layers
        body_layers[v] = len(layers) - 1
        blocks.append(layers)
        n_layers += len(layers)
        gap_level += [v] * len(gap_region)
        gap_kind += list(gap_region)
    points = np.concatenate(blocks).reshape(-1, 3)
    n_gaps = len(gap_kind)
    cells = extrude(quads, n_gaps, n2)

    # tags
    kind = np.array(gap_kind)
    region = np.empty((n_gaps, q), dtype=np.int64)
    is_disc = kind == "disc"
    region[~is_disc] = np.array([REGION_CODES[k] for k in kind[~is_disc]])[:, None]
    region[np.ix_(~is_disc, zone == ZONE_CORTEX)] = REGION_CODES["cortex"]
    if is_disc.any():
        region[is_disc] = disc_regions(zone, 1)[None, :]
    level_code = {n: i + 1 for i, n in enumerate(names)}
    level = np.repeat(np.array([level_code[n] for n in gap_level], dtype=np.int64), q)

    # node and face sets
    node_sets, face_sets = {}, {}
    outer = np.flatnonzero(topo["ring"] == counts.n_rings)
    post = posterior_wall_quads(counts)
    for v in order:
        f0 = first_layer[v]
        L = len(vertebra_layers_gaps(kind, gap_level, v))
        g0, g1 = f0, f0 + L - 1                                   # first and last cell layer
        node_sets[f"{v}:inferior"] = np.arange(f0 * n2, (f0 + 1) * n2)
        node_sets[f"{v}:superior"] = np.arange((f0 + L) * n2, (f0 + L + 1) * n2)
        face_sets[f"{v}:inferior"] = cells[g0 * q:(g0 + 1) * q][:, [0, 3, 2, 1]]
        face_sets[f"{v}:superior"] = cells[g1 * q:(g1 + 1) * q][:, [4, 5, 6, 7]]
        oc = cells[((g0 + np.arange(L))[:, None] * q + outer[None, :]).ravel()]
        face_sets[f"{v}:lateral"] = oc[:, [1, 2, 6, 5]]
        face_sets[f"{v}:posterior_wall"] = oc[np.tile(post, L)][:, [1, 2, 6, 5]]
    top, bottom = order[0], order[-1]
    node_sets["segment:superior"] = node_sets[f"{top}:superior"]
    node_sets["segment:inferior"] = node_sets[f"{bottom}:inferior"]
    face_sets["segment:superior"] = face_sets[f"{top}:superior"]
    face_sets["segment:inferior"] = face_sets[f"{bottom}:inferior"]

    region = region.ravel()
    arches = None
    if _posterior_flag(posterior):
        from .posterior import build_posterior
        points, pcells, plevel, arches = build_posterior(points, counts, topo, order, frames, first_layer,
                                                         body_layers, dims, h, articular_refinement)
        arches.stack_cells = len(cells)
        cells = np.concatenate([cells, pcells])
        region = np.concatenate([region, np.full(len(pcells), REGION_CODES["posterior"], dtype=np.int64)])
        level = np.concatenate([level, np.array([level_code[n] for n in plevel], dtype=np.int64)])
    present = np.unique(region)
    mesh = make_mesh(points, cells, cell_data={"region": region, "level": level},
                     tag_names={"region": {int(c): REGION_NAMES[int(c)] for c in present},
                                "level": {c: n for n, c in level_code.items()}},
                     node_sets=node_sets, face_sets=face_sets)
    seg = Segment(mesh=mesh, levels=order, discs=tuple(n for n in names if "-" in n), dimensions=dims,
                  frames=frames, counts=counts, element_size=h, cortex_thickness=float(cortex_thickness),
                  endplate_thickness=float(endplate_thickness), n_cortex_layers=int(n_cortex_layers),
                  disc_refinement=float(disc_refinement), grading=curves,
                  fibres=fibre_spec if len(order) > 1 else None, nucleus=_nucleus_kind(nucleus),
                  posterior=arches)
    seg.nucleus_prepressure = resolve_prepressure(seg, prepressure)
    return seg if materials is None else with_materials(seg, materials)


def _fibres(fibres):
    if fibres is None or fibres is False:
        return None
    if fibres is True:
        return AnnulusFibres()
    if isinstance(fibres, AnnulusFibres):
        return fibres
    if isinstance(fibres, dict):
        return AnnulusFibres(**fibres)
    raise InputError(f"fibres = {fibres!r}; expected True, False, None, a dict of AnnulusFibres fields or an "
                     "AnnulusFibres")


def _central_coarsening(value):
    if isinstance(value, (bool, np.bool_)) or value not in (1, 3):
        raise InputError(f"central_coarsening = {value!r}; allowed 1 (uniform O-grid) or 3 (default: the "
                         "central cells about element_size)")
    return int(value)


def _posterior_flag(posterior):
    if posterior is None or isinstance(posterior, (bool, np.bool_)):
        return bool(posterior)
    raise InputError(f"posterior = {posterior!r}; expected True or False")


#: Largest nucleus pre-pressure accepted (MPa): a pressure at rest, below the 0.5 MPa of relaxed standing
#: (Wilke et al. 1999); the published rest values are 0.10-0.24 MPa (docs/materials.md).
MAX_PREPRESSURE = 0.5


#: The nucleus pre-pressure (MPa) that ``nucleus_prepressure=None`` gives a segment whose discs have nucleus cells:
#: the L4-L5 intradiscal pressure lying prone, in vivo (Wilke et al. 1999, Spine 24:755; docs/materials.md), the
#: pressure at the lowest load measured.
LYING_PREPRESSURE = 0.10


def resolve_prepressure(seg, value):
    """The nucleus pre-pressure of segment ``seg`` (MPa) for the option ``value``: None gives
    :data:`LYING_PREPRESSURE` if ``seg`` has nucleus cells and 0 if it has none (a single vertebra, discs
    without a nucleus); a number is checked (:func:`check_prepressure`), and one above 0 on a segment without
    nucleus cells is an InputError naming it."""
    nucleus = REGION_CODES["nucleus"]
    has_nucleus = bool(np.any(seg.mesh.cell_data["region"] == nucleus)) and bool(seg.discs)
    if value is None:
        return LYING_PREPRESSURE if has_nucleus else 0.0
    p = check_prepressure(value)
    if p and not has_nucleus:
        raise InputError(f"nucleus_prepressure = {value!r} MPa: the segment ({'-'.join(seg.levels)}) has no nucleus "
                         "cells to carry it; give 0 (or None: the lying pressure where there is a nucleus, 0 "
                         "elsewhere)")
    return p


def check_prepressure(value):
    """``nucleus_prepressure`` as a float, or InputError naming the value and the allowed range."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        p = math.nan
    if isinstance(value, bool) or not (0.0 <= p <= MAX_PREPRESSURE):
        raise InputError(f"nucleus_prepressure = {value!r} MPa; allowed range 0 to {MAX_PREPRESSURE} MPa (the swelling "
                         "pressure of the nucleus at rest: 0.10 lying prone, 0.12 lying laterally, up to 0.24 after a "
                         "night's rest, Wilke et al. 1999; 0 for none)")
    return p


def _nucleus_kind(nucleus):
    if nucleus not in ("solid", "fluid"):
        raise InputError(f"nucleus = {nucleus!r}; allowed: 'solid', 'fluid'")
    return nucleus


def _check_frames(frames, levels):
    """``{vertebra: (R, origin)}`` as float arrays with R a proper rotation, or None."""
    if frames is None:
        return None
    missing = [v for v in levels if v not in frames]
    unknown = [k for k in frames if k not in levels]
    if missing or unknown:
        raise InputError(f"frames: {'missing ' + str(missing) if missing else 'unknown ' + str(unknown)}; "
                         f"give one (R, origin) per vertebra of {list(levels)}")
    out = {}
    for v in levels:
        try:
            R, o = (np.asarray(a, dtype=float) for a in frames[v])
        except (TypeError, ValueError):
            raise InputError(f"frames[{v!r}] = {frames[v]!r}; expected (R (3, 3), origin (3,))") from None
        if R.shape != (3, 3) or o.shape != (3,) or not (np.isfinite(R).all() and np.isfinite(o).all()):
            raise InputError(f"frames[{v!r}]: R shape {R.shape}, origin shape {o.shape}; expected (3, 3) and (3,), "
                             f"finite")
        if not np.allclose(R.T @ R, np.eye(3), atol=1e-6) or np.linalg.det(R) <= 0:
            raise InputError(f"frames[{v!r}]: R is not a rotation (R^T R = I, det R = +1 within 1e-6)")
        out[v] = (R, o)
    return out


def vertebra_layers_gaps(kind, gap_level, v):
    """Indices of the cell layers of vertebra ``v`` in the stack."""
    return [i for i, (k, n) in enumerate(zip(kind, gap_level)) if n == v and k != "disc"]


def disc(name, element_size=DEFAULT_ELEMENT_SIZE, cortex_thickness=DEFAULT_CORTEX_THICKNESS,
         endplate_thickness=DEFAULT_ENDPLATE_THICKNESS, scale=1.0, overrides=None, disc_refinement=DISC_REFINEMENT):
    """Mesh of one disc alone, in the lower vertebra's local frame.

    Built as the disc cells of the two-vertebra segment around it (so it is exactly the disc of
    :func:`~vertebrafe.anatomy.segment.segment`); unused bone nodes are dropped. Node sets and face sets
    ``superior`` and ``inferior`` are its two endplate contact surfaces (outward from the disc). Both
    adjacent vertebrae must be in the level table (T10-T11 ... L4-L5).
    """
    if not isinstance(name, (str, DiscDimensions)):
        raise InputError(f"disc name = {name!r}; expected e.g. 'L1-L2'")
    key = name if isinstance(name, str) else name.name
    parts = key.split("-")
    if len(parts) != 2 or any(p not in vertebra_names() for p in parts):
        raise InputError(f"disc = {key!r}: both adjacent vertebrae must be in {list(vertebra_names())} "
                         f"to mesh it alone (allowed T10-T11 ... L4-L5)")
    level_dimensions(key)                                       # validates the name
    seg = segment(parts, element_size=element_size, cortex_thickness=cortex_thickness,
                  endplate_thickness=endplate_thickness, scale=scale, overrides=overrides,
                  disc_refinement=disc_refinement)
    mesh = seg.mesh
    keep = mesh.cells_in("level", key)
    cells = mesh.cells[keep]
    used = np.unique(cells)
    remap = np.full(mesh.n_points, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    lo, up = parts[1], parts[0]
    sup = remap[seg.face_sets[f"{up}:inferior"]][:, ::-1]        # outward from the disc = reversed
    inf = remap[seg.face_sets[f"{lo}:superior"]][:, ::-1]
    region = mesh.cell_data["region"][keep]
    names = {REGION_CODES["annulus"]: "annulus", REGION_CODES["nucleus"]: "nucleus"}
    return make_mesh(mesh.points[used], remap[cells],
                     cell_data={"region": region, "level": np.ones(len(cells), dtype=np.int64)},
                     tag_names={"region": names, "level": {1: key}},
                     node_sets={"superior": remap[seg.node_sets[f"{up}:inferior"]],
                                "inferior": remap[seg.node_sets[f"{lo}:superior"]]},
                     face_sets={"superior": sup, "inferior": inf})
