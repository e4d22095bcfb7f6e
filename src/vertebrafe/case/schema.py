"""The case schema: one :class:`Field` per key of each section (:data:`SCHEMA`), used for validation and
for ``docs/cases.md``."""
from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from typing import Any

from ..anatomy.segment import segment as _segment
from ..clinical import fracture, kyphoplasty, vertebroplasty
from ..clinical.cement import default_surface
from ..errors import InputError
from ..image import Calibration, image_segment
from ..loads import LEVEL_LOAD_VIA, LOAD_RANGES, LevelLoad
from ..materials import MaterialSet
from ..muscles import MUSCLES
from ..simulate import simulate as _simulate

__all__ = ["CaseError", "Field", "REQUIRED", "SCHEMA", "SECTIONS"]

REQUIRED = object()          # sentinel default of a required key
_INF = math.inf


class CaseError(InputError):
    """An invalid case or study file (subclass of :class:`~vertebrafe.errors.InputError`)."""


# ------------------------------------------------------------------------------------------------
# Schema


@dataclass(frozen=True)
class Field:
    """One key of a case section.

    ``kind`` is ``"float"`` (int or float accepted, bool not), ``"int"``, ``"bool"``, ``"str"``,
    ``"levels"`` (a range string ``"T12-L2"`` or a list of vertebra names), ``"table"`` (a TOML table; with
    ``fields`` its keys are validated like a section's), ``"tables"`` (an array of tables with keys
    ``fields``), ``"per_level"`` (a table ``{vertebra = number}``) or ``"float3"`` (three numbers). ``low``/``high`` bound numbers (``low_open``/``high_open`` exclude
    the bound); ``choices`` restrict strings (or ints). ``default`` is :data:`REQUIRED` for a required
    key, ``None`` for an optional key without a value.
    """

    name: str
    kind: str
    default: Any = None
    doc: str = ""
    unit: str = ""
    low: float = -_INF
    high: float = _INF
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    source: str = ""
    only: tuple = ()           # treatment kinds the key applies to (treatment section)
    fields: tuple = ()         # keys of a nested table ("table") or of each table of an array ("tables")

    def allowed(self):
        """Human-readable allowed values."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "float3" and (self.low != -_INF or self.high != _INF):
            return "three numbers [x, y, z], each " + dataclasses.replace(self, kind="float").allowed()
        if self.kind in ("float", "int"):
            if self.low == -_INF and self.high == _INF:
                return "any number" if self.kind == "float" else "any integer"
            if self.high == _INF:
                return f"{'>' if self.low_open else '>='} {self.low:g}"
            if self.low == -_INF:
                return f"{'<' if self.high_open else '<='} {self.high:g}"
            return (f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}")
        if self.kind == "bmd":
            return f"a number in (0, {self.high:g}] or a table {{vertebra = number}}"
        if self.kind == "per_level":
            return "a table {vertebra = number}, each " + dataclasses.replace(self, kind="float").allowed()
        return {"bool": "true or false", "str": "a string", "levels": "a range 'T12-L2' or a list of vertebrae "
                "T10..L5", "table": "a table", "tables": "an array of tables", "float3": "three numbers [x, y, z]"}.get(self.kind, self.kind)


def _default(obj, name):
    """The library's default of parameter (or dataclass field) ``name`` of ``obj``: the one source of the
    defaults of case files."""
    if dataclasses.is_dataclass(obj):
        f = next(f for f in dataclasses.fields(obj) if f.name == name)
        return f.default if f.default is not dataclasses.MISSING else f.default_factory()
    return inspect.signature(obj).parameters[name].default


def level_names():
    from ..anatomy.levels import vertebra_names
    return tuple(vertebra_names())


def law_names():
    from ..materials import LAWS
    return tuple(LAWS)


def preset_names():
    from ..loads import PRESETS
    return tuple(PRESETS)


_MAT = "vertebrafe.materials (docs/materials.md)"
_CLIN = "vertebrafe.clinical (docs/clinical.md)"
_LOADS = "vertebrafe.loads (docs/loads.md)"


def _load_field(name, doc):
    """A [load] key whose range is the one of :class:`vertebrafe.loads.Load` (``LOAD_RANGES``)."""
    low, high, unit = LOAD_RANGES[name]
    return Field(name, "float", None, doc, unit, low, high, source=_LOADS)


_MUSCLES = "vertebrafe.muscles (docs/loads.md)"
_F_MAX, _M_MAX = LOAD_RANGES["level_force"][1], LOAD_RANGES["level_moment"][1]

#: keys of one ``[[load.levels]]`` table (a :class:`vertebrafe.loads.LevelLoad`); the magnitudes of force and
#: moment are bounded by ``LOAD_RANGES["level_force"]`` and ``["level_moment"]`` (checked by parse_case)
LEVEL_LOAD_FIELDS = (
    Field("level", "str", REQUIRED, "vertebra the load acts on (one of segment.levels)"),
    Field("force", "float3", _default(LevelLoad, "force"), "force (global axes: +x right, +y anterior, "
          f"+z superior), magnitude at most {_F_MAX:g} N", "N", -_F_MAX, _F_MAX, source=_LOADS),
    Field("moment", "float3", _default(LevelLoad, "moment"), "moment vector (flexion -x, right bending +y, "
          f"turning left +z), magnitude at most {_M_MAX:g} N m", "N m", -_M_MAX, _M_MAX, source=_LOADS),
    Field("point", "float3", None, "where the force acts (global frame); default the vertebral body's "
          "centroid (distributed) or the plate centre (plate)", "mm", -1e3, 1e3, source=_LOADS),
    Field("via", "str", _default(LevelLoad, "via"), "'distributed': a body force over the vertebra with "
          "exactly this resultant; 'plate': a rigid plate on its superior endplate", choices=LEVEL_LOAD_VIA,
          source=_LOADS),
    Field("name", "str", _default(LevelLoad, "name"), "label in the records"),
)

#: keys of the ``[load.muscles]`` table: one force table per muscle group of :data:`vertebrafe.muscles.MUSCLES`
#: and ``balance``
MUSCLE_FIELDS = tuple(
    Field(m.name, "per_level", None, f"force of the {m.name.replace('_', ' ')} per vertebra, e.g. {m.name} = "
          f"{{L1 = 300.0}} ({'posterior' if m.side < 0 else 'anterior'} moment arm; vertebrae "
          f"{list(m.moment_arm_mm)[0]}-{list(m.moment_arm_mm)[-1]})",
          "N", 0.0, _F_MAX, source=_MUSCLES) for m in MUSCLES.values()) + (
    Field("balance", "bool", False, "the muscle that opposes the load's sagittal moment (erector spinae for "
          "flexion, rectus abdominis for extension) acts on the top vertebra with the force that balances that "
          "moment about the body's centroid (moment / moment arm)", source=_MUSCLES),
)
_ANAT = "vertebrafe.anatomy (docs/anatomy.md)"
_IMG = "vertebrafe.image (docs/images.md)"

#: section -> tuple of Field. Choices that come from other modules are filled lazily by :func:`resolved_schema`.
SCHEMA: dict[str, tuple[Field, ...]] = {
    "case": (
        Field("name", "str", "", "label of the case in outputs (default: the file name without .toml)"),
        Field("description", "str", "", "free text"),
    ),
    "segment": (
        Field("levels", "levels", REQUIRED, "contiguous vertebrae, cranial or caudal first, e.g. 'T12-L2' or "
              "['T12', 'L1', 'L2']", source=_ANAT),
        Field("element_size", "float", _default(_segment, "element_size"), "target cell size of cancellous bone and disc", "mm", 0.5, 10.0,
              source="vertebrafe.segment default (anatomy.vertebra.DEFAULT_ELEMENT_SIZE)"),
        Field("scale", "float", _default(_segment, "scale"), "global length factor on the table dimensions", "", 0.5, 2.0, True, True,
              source=_ANAT),
        Field("cortex_thickness", "float", _default(_segment, "cortex_thickness"), "cortical shell thickness", "mm", 0.1, 3.0, source=_ANAT),
        Field("endplate_thickness", "float", _default(_segment, "endplate_thickness"), "bony endplate thickness", "mm", 0.1, 3.0, source=_ANAT),
        Field("n_cortex_layers", "int", _default(_segment, "n_cortex_layers"), "element layers across the cortical shell", "", 1, 4),
        Field("disc_refinement", "float", _default(_segment, "disc_refinement"), "disc element layers per element_size of disc height", "",
              0.5, 4.0, source="vertebrafe.anatomy.disc.DISC_REFINEMENT (docs/anatomy.md)"),
        Field("central_coarsening", "int", _default(_segment, "central_coarsening"), "angular coarsening of the O-grid "
              "inside the nucleus curve: 3 (central cells about element_size) or 1 (the uniform O-grid: central "
              "cells about 2.5x smaller, about 1.5x the cells per layer; a third less mesh error of a kyphoplasty's "
              "in-situ stiffness); parametric segments only", "", choices=(1, 3),
              source="vertebrafe.anatomy.vertebra.grid_counts (docs/anatomy.md)"),
        Field("annulus_refinement", "int", _default(_segment, "annulus_refinement"), "multiple of the O-grid's rings "
              "between the nucleus curve and the inner cortical curve (1: the default grid; 2 with central_coarsening "
              "= 1 is the grid on which a kyphoplasty's in-situ stiffness converges, 1.8-2.1x the nodes of the default "
              "grid; set it for every case of a study, the reference too); parametric segments only", "", 1, 4, source="vertebrafe.anatomy.vertebra.grid_counts (docs/anatomy.md)"),
        Field("fibres", "bool", False, "tension-only collagen fibres in the annulus (published angles, toe-region law of O'Connell 2012; "
              "solved by the active-set loop) on their ground substance (MaterialSet.annulus_matrix, 0.966 MPa)", source="vertebrafe.anatomy.fibres (docs/anatomy.md, docs/materials.md)"),
        Field("posterior", "bool", _default(_segment, "posterior"), "posterior elements (pedicles, laminae, processes), facet joints "
              "(compression-only) and ligaments (tension-only); parametric segments only",
              source="vertebrafe.anatomy.posterior, vertebrafe.anatomy.ligaments (docs/anatomy.md, docs/materials.md)"),
        Field("articular_refinement", "int", _default(_segment, "articular_refinement"), "multiple of the cell layers "
              "of the articular processes beyond the bodies (1: the default mesh; 2 brings the capsular ligament under "
              "extension and the facet forces, posterior shares and capsules under lateral bending of the 2 mm segment "
              "within 2.5 % of the default 1 mm mesh's, for 1.7 % more unknowns, and lowers their 2 -> 1 mm changes "
              "without removing them; set it for every case of a study, the reference too); with posterior elements only", "", 1, 4,
              source="vertebrafe.anatomy.posterior (docs/anatomy.md, docs/validation.md)"),
        Field("nucleus", "str", _default(_segment, "nucleus"), "nucleus model: 'solid' (nearly incompressible cells) or 'fluid' (plus a "
              "fluid-filled cavity with one uniform pressure per disc)", choices=("solid", "fluid"),
              source="vertebrafe.anatomy.fibres.nucleus_cavities (docs/anatomy.md)"),
        Field("nucleus_prepressure", "float", _default(_segment, "nucleus_prepressure"), "swelling (osmotic) pressure "
              "of every nucleus at rest; the discs are pre-stressed so that the unloaded nuclei carry it and motions are "
              "measured from that rest state (absent: 0.10, the lying-prone pressure of Wilke et al. 1999, where the "
              "discs have a nucleus, 0 without one; 0: none, stress-free discs at rest, the only value besides absent "
              "that a single vertebra accepts; published: 0.10 lying prone, 0.12 lying laterally)",
              "MPa", 0.0, 0.5, source="vertebrafe.swelling (docs/materials.md, docs/validation.md)"),
        Field("overrides", "table", None, "per vertebra or disc dimension overrides, e.g. "
              "[segment.overrides.L1] anterior_height = 18.0 (fields and ranges: vertebrafe.anatomy.levels)",
              source=_ANAT),
    ),
    "bone": (
        Field("bmd", "bmd", None, "QCT trabecular vBMD (give bmd or t_score), one number or a table with one "
              "value per vertebra, e.g. bmd = {T12 = 70, L1 = 55, L2 = 72}; sets the cancellous and the "
              "cortical shell moduli", "mg/cm^3", 0.0, 400.0,
              low_open=True, source=_MAT),
        Field("t_score", "float", None, "T-score, converted with materials.bmd_from_t_score (170 +/- 30 mg/cm^3, "
              "an assumption)", "", -8.0, 4.0, source=_MAT),
        Field("law", "str", _default(MaterialSet, "law"), "density-modulus law", choices=("<laws>",), source=_MAT),
        Field("anisotropic", "bool", _default(MaterialSet, "anisotropic"), "transversely isotropic cancellous bone (axis z)", source=_MAT),
        Field("transverse_ratio", "float", _default(MaterialSet, "transverse_ratio"), "transverse / axial cancellous modulus (with anisotropic)", "",
              0.0, 1.0, low_open=True, source=_MAT),
    ),
    "image": (
        Field("ct", "str", REQUIRED, "CT in HU: a NIfTI file (.nii, .nii.gz) or a DICOM series directory, "
              "relative to the case file", source=_IMG),
        Field("labels", "str", REQUIRED, "vertebra label map on the CT grid (NIfTI; VerSe labels T12 = 19, "
              "L1 = 20, ...), relative to the case file", source=_IMG),
        Field("calibration_slope", "float", None, "HU -> density slope (give it with calibration_intercept, or "
              "rods and rod_densities)", "mg/cm^3 per HU", 0.0, 10.0, True, True, source=_IMG),
        Field("calibration_intercept", "float", None, "HU -> density intercept", "mg/cm^3", -1000.0, 1000.0,
              source=_IMG),
        Field("calibration_material", "str", _default(Calibration, "material"), "phantom material", choices=("K2HPO4", "hydroxyapatite"),
              source=_IMG),
        Field("rods", "str", None, "label image of the calibration rods on the CT grid (instead of slope and "
              "intercept), relative to the case file", source=_IMG),
        Field("rod_densities", "table", None, "known density per rod label, e.g. {1 = 0.0, 2 = 100.0}",
              "mg/cm^3", source=_IMG),
        Field("bmd_margin", "float", _default(image_segment, "bmd_margin"), "depth below the label surface of the vBMD region", "mm", 0.0, 20.0,
              source=_IMG),
        Field("pv_margin", "float", _default(image_segment, "pv_margin"), "depth of the partial-volume correction of the cell densities", "mm",
              0.0, 20.0, source=_IMG),
        Field("density_scale", "float", _default(image_segment, "density_scale"), "SD of the Gaussian average of "
              "the density inside each label before it is mapped onto cells (the continuum scale of cancellous "
              "bone; 0: each cell samples the image)", "mm", 0.0, 10.0, source=_IMG),
        Field("max_anisotropy", "float", _default(image_segment, "max_anisotropy"), "largest allowed ratio of voxel edge lengths", "", 1.0, 20.0,
              source=_IMG),
        Field("geometry", "str", _default(image_segment, "geometry"), "template fitted to each label (every "
              "clinical operation) or voxel cells inside the labels (simulate and measure only)",
              choices=("template", "voxel"), source=_IMG),
        Field("snap", "bool", _default(image_segment, "snap"), "voxel geometry: body surfaces at their sub-cell "
              "position along the spine axis", source=_IMG),
        Field("smoothing", "int", _default(image_segment, "smoothing"), "voxel geometry: Taubin smoothing passes "
              "over the outer surface", "", 0, 50, source=_IMG),
        Field("arch_radius", "float", _default(image_segment, "arch_radius"), "radius of the ball that cuts a "
              "whole-vertebra label to its body", "mm", 2.0, 20.0, source=_IMG),
    ),
    "fracture": (
        Field("level", "str", REQUIRED, "fractured vertebra (must be in segment.levels)"),
        Field("kind", "str", _default(fracture, "kind"), "fracture shape", choices=("wedge", "biconcave", "crush"), source=_CLIN),
        Field("grade", "int", None, "Genant grade (1: 22.5 %, 2: 32.5 %, 3: 45 % height loss); default 2 when "
              "height_loss is not given either", "", choices=(1, 2, 3), source=_CLIN),
        Field("height_loss", "float", None, "fraction of the affected height lost (instead of grade)", "",
              0.0, 0.6, low_open=True, source=_CLIN),
        Field("damage_factor", "float", _default(fracture, "damage_factor"), "modulus factor of the damaged zone", "", 0.0, 1.0, low_open=True,
              source="calibrated to Wegrzyn et al. 2011 (docs/clinical.md)"),
        Field("damage_strength_factor", "float", _default(fracture, "damage_strength_factor"), "yield-stress factor "
              "of the damaged zone (its yield strains x this / damage_factor)", "", 0.0, 1.0, low_open=True,
              source="calibrated to the post-fracture failure load of Wegrzyn et al. 2011 (docs/validation.md)"),
    ),
    "treatment": (
        Field("kind", "str", "none", "management", choices=("none", "vertebroplasty", "kyphoplasty")),
        Field("level", "str", None, "treated vertebra (default: the fractured level)"),
        Field("volume", "float", None, "cement volume (default VP 2.8 mL, Buchbinder 2009; BKP 2.4 mL per "
              "balloon, FREE trial)", "mL", 0.0, 20.0, low_open=True, source=_CLIN,
              only=("vertebroplasty", "kyphoplasty")),
        Field("fill", "float", None, "cement volume as a fraction of the level's cancellous volume "
              "(instead of volume)", "", 0.0, 1.0, low_open=True, source=_CLIN, only=("vertebroplasty",)),
        Field("approach", "str", _default(vertebroplasty, "approach"), "needle approach", choices=("bipedicular", "unipedicular"),
              source=_CLIN, only=("vertebroplasty",)),
        Field("side", "str", _default(vertebroplasty, "side"), "entry side of a unipedicular approach", choices=("left", "right"),
              only=("vertebroplasty",)),
        Field("material", "str", _default(vertebroplasty, "material"), "cement phase: cement-bone composite or pure PMMA",
              choices=("composite", "pmma"), source=_CLIN, only=("vertebroplasty",)),
        Field("restoration", "float", None, "fraction of the lost height regained (default 0.5 for a fractured "
              "level, an assumption)", "", 0.0, 1.0, source=_CLIN, only=("kyphoplasty",)),
        Field("balloons", "int", _default(kyphoplasty, "balloons"), "balloons (2 bipedicular, 1 midline)", "", choices=(1, 2), source=_CLIN,
              only=("kyphoplasty",)),
        Field("rim_thickness", "float", _default(kyphoplasty, "rim_thickness"), "compacted-bone rim thickness", "mm", 0.0, 5.0, source=_CLIN,
              only=("kyphoplasty",)),
        Field("offset", "float3", None, "shift of the cement in the level's local frame", "mm", -20.0, 20.0,
              source=_CLIN, only=("vertebroplasty", "kyphoplasty")),
        Field("vertical_extent", "float", _default(vertebroplasty, "vertical_extent"), "fraction of the local body "
              "height, centred, that the cement may occupy (1 = endplate to endplate; an assumption; a kyphoplasty that "
              "restores height bears on both endplates instead)", "", 0.2, 1.0,
              low_open=True, source=_CLIN, only=("vertebroplasty", "kyphoplasty")),
        Field("interface", "str", _default(vertebroplasty, "interface"), "cement-bone interface: vertebroplasty "
              "composite bonded, frictional (modulus x 0.80, Kinzl et al. 2012) or layer (an explicit compliant layer); "
              "kyphoplasty PMMA-rim interface bonded or layer", choices=("bonded", "frictional", "layer"), source=_CLIN,
              only=("vertebroplasty", "kyphoplasty")),
        Field("layer_thickness", "float", None, "interface-layer thickness, the outer shell of the bolus (default "
              "0.5, an assumption; only with interface = 'layer')", "mm", 0.05, 5.0, source=_CLIN,
              only=("vertebroplasty", "kyphoplasty")),
        Field("layer_modulus", "float", None, "interface-layer modulus (default thickness / 1e-3 mm/MPa: 1 um "
              "micromotion per MPa, Miller et al. 2016; for kyphoplasty an assumption; only with interface = "
              "'layer')", "MPa", 1.0, 20000.0, source=_CLIN, only=("vertebroplasty", "kyphoplasty")),
        Field("surface", "str", _default(vertebroplasty, "surface"), "cement surface: fitted (mesh nodes snapped "
              "onto it; kyphoplasty: the cavity, then the compacted rim's outer surface), mixed (cut cells mixed "
              "only) or, vertebroplasty only, pillowed (a layer of cells each side, converged from about 8 cells "
              f"across; boluses a cell clear of the cortex); default vertebroplasty {default_surface('centre')} for "
              f"placement centre, {default_surface('fracture')} for fracture; kyphoplasty "
              f"{_default(kyphoplasty, 'surface')}", choices=("fitted", "mixed", "pillowed"), source=_CLIN,
              only=("vertebroplasty", "kyphoplasty")),
        Field("placement", "str", _default(vertebroplasty, "placement"), "where the cement goes: centre (bolus at "
              "mid-height) or fracture (a fractured level's fracture zone under the collapsed endplate first)",
              choices=("centre", "fracture"), source=_CLIN, only=("vertebroplasty",)),
        Field("bridge", "float", None, "gap up to which the two bipedicular boluses are joined by a smooth union "
              "(no thin septum of bone between them; default none: two separate boluses; only with approach = "
              "'bipedicular')", "mm", 0.0, 10.0, source=_CLIN, only=("vertebroplasty",)),
    ),
    "load": (
        Field("preset", "str", None, "activity preset (instead of explicit values)", choices=("<presets>",),
              source=_LOADS),
        _load_field("compression", "compressive force on the top endplate"),
        _load_field("flexion", "flexion moment (magnitude)"),
        _load_field("extension", "extension moment (magnitude)"),
        _load_field("lateral_bending", "lateral bending moment, + bends to the right"),
        _load_field("axial_rotation", "axial moment, + about +z"),
        _load_field("anterior_shear", "horizontal force on the top plate, + pushes it anteriorly (+y)"),
        _load_field("lateral_shear", "horizontal force on the top plate, + pushes it to the right (+x)"),
        Field("follower", "bool", None, "compression as a follower load along the curvature", source=_LOADS),
        Field("reference_point", "float3", None, "point of application (global frame); default the centroid "
              "of the top endplate", "mm", -1e3, 1e3, source=_LOADS),
        Field("levels", "tables", None, "forces and moments on any vertebra, one [[load.levels]] table each "
              "(keys: level, force, moment, point, via, name)", source=_LOADS, fields=LEVEL_LOAD_FIELDS),
        Field("muscles", "table", None, "trunk-muscle forces, [load.muscles] (keys: "
              + ", ".join(f.name for f in MUSCLE_FIELDS) + ")", source=_MUSCLES, fields=MUSCLE_FIELDS),
    ),
    "solver": (
        Field("solver", "str", "auto", "linear solver", choices=("auto", "amg", "direct")),
        Field("rtol", "float", 1e-8, "relative residual of the iterative solve", "", 1e-14, 1e-2),
        Field("maxiter", "int", None, "iteration limit of the iterative solve (default 2000)", "", 1, 100000),
        Field("strength", "str", _default(_simulate, "strength"), "strength of the factor of risk: linear yield volume "
              "(one solve per vertebra) or pushover (limit load, elastic-perfectly-plastic cells; valid with cement)",
              choices=("yield-volume", "pushover"), source="vertebrafe.post.strength (docs/validation.md)"),
    ),
    "output": (
        Field("vtu", "bool", True, "write result.vtu (fields for ParaView / vertebrafe view)"),
        Field("metrics", "bool", True, "write metrics.csv and metrics.json"),
    ),
}

#: section order, and whether the section is required
SECTIONS = {"case": False, "segment": True, "bone": False, "image": False, "fracture": False, "treatment": False,
            "load": True, "solver": False, "output": False}


def _choices(f):
    if f.choices == ("<laws>",):
        return law_names()
    if f.choices == ("<presets>",):
        return preset_names()
    return f.choices


def resolved_schema():
    """SCHEMA with the lazily known choices filled in."""
    return {s: tuple(dataclasses.replace(f, choices=_choices(f)) for f in fields) for s, fields in SCHEMA.items()}


# ------------------------------------------------------------------------------------------------
# Python objects of a validated case

