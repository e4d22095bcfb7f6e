"""Python objects of a validated case: :class:`Case` and its section dataclasses, and :func:`case_id`."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Optional

from .schema import SCHEMA, SECTIONS

__all__ = ["CaseMeta", "SegmentSpec", "BoneSpec", "ImageSpec", "FractureSpec", "TreatmentSpec", "LoadSpec", "SolverSpec",
           "OutputSpec", "Case", "case_id", "SPECSPEC_CLASSES"]


def _d(section, key):
    """Default of ``section.key`` in :data:`~vertebrafe.case.schema.SCHEMA` (which takes it from the library)."""
    return next(f.default for f in SCHEMA[section] if f.name == key)


@dataclass(frozen=True)
class CaseMeta:
    name: str = ""
    description: str = ""


@dataclass(frozen=True)
class SegmentSpec:
    levels: tuple = ()
    element_size: float = _d("segment", "element_size")
    scale: float = _d("segment", "scale")
    cortex_thickness: float = _d("segment", "cortex_thickness")
    endplate_thickness: float = _d("segment", "endplate_thickness")
    n_cortex_layers: int = _d("segment", "n_cortex_layers")
    disc_refinement: float = _d("segment", "disc_refinement")
    central_coarsening: int = _d("segment", "central_coarsening")
    annulus_refinement: int = _d("segment", "annulus_refinement")
    fibres: bool = _d("segment", "fibres")
    posterior: bool = _d("segment", "posterior")
    articular_refinement: int = _d("segment", "articular_refinement")
    nucleus: str = _d("segment", "nucleus")
    nucleus_prepressure: float = _d("segment", "nucleus_prepressure")
    overrides: Optional[dict] = None

    def size_estimate(self):
        """Mesh size and peak memory of this segment, estimated before meshing
        (:func:`vertebrafe.resources.estimate_segment`)."""
        from ..resources import estimate_segment
        return estimate_segment(self.levels, self.element_size, self.scale, self.n_cortex_layers, self.overrides,
                                self.posterior, self.central_coarsening, self.annulus_refinement,
                                self.articular_refinement)


@dataclass(frozen=True)
class BoneSpec:
    bmd: object = None                  # float, {vertebra: float}, or None for an [image] case
    t_score: Optional[float] = None
    law: str = _d("bone", "law")
    anisotropic: bool = _d("bone", "anisotropic")
    transverse_ratio: float = _d("bone", "transverse_ratio")


@dataclass(frozen=True)
class ImageSpec:
    """The ``[image]`` section with paths resolved against the case file's directory."""
    ct: str = ""
    labels: str = ""
    calibration_slope: Optional[float] = None
    calibration_intercept: Optional[float] = None
    calibration_material: str = _d("image", "calibration_material")
    rods: Optional[str] = None
    rod_densities: Optional[dict] = None
    bmd_margin: float = _d("image", "bmd_margin")
    pv_margin: float = _d("image", "pv_margin")
    density_scale: float = _d("image", "density_scale")
    max_anisotropy: float = _d("image", "max_anisotropy")
    geometry: str = _d("image", "geometry")
    snap: bool = _d("image", "snap")
    smoothing: int = _d("image", "smoothing")
    arch_radius: float = _d("image", "arch_radius")

    def calibration(self):
        """The calibration argument of :func:`vertebrafe.image_segment`."""
        if self.rods is not None:
            return {"rods": self.rods, "densities": {int(k): float(v) for k, v in self.rod_densities.items()},
                    "material": self.calibration_material}
        return {"slope": self.calibration_slope, "intercept": self.calibration_intercept,
                "material": self.calibration_material}


@dataclass(frozen=True)
class FractureSpec:
    level: str = ""
    kind: str = _d("fracture", "kind")
    grade: Optional[int] = None
    height_loss: Optional[float] = None
    damage_factor: float = _d("fracture", "damage_factor")
    damage_strength_factor: float = _d("fracture", "damage_strength_factor")


@dataclass(frozen=True)
class TreatmentSpec:
    kind: str = "none"
    level: Optional[str] = None
    volume: Optional[float] = None
    fill: Optional[float] = None
    approach: str = _d("treatment", "approach")
    side: str = _d("treatment", "side")
    material: str = _d("treatment", "material")
    restoration: Optional[float] = None
    balloons: int = _d("treatment", "balloons")
    rim_thickness: float = _d("treatment", "rim_thickness")
    offset: Optional[tuple] = None
    vertical_extent: float = _d("treatment", "vertical_extent")
    interface: str = _d("treatment", "interface")
    layer_thickness: Optional[float] = None
    layer_modulus: Optional[float] = None
    surface: str = _d("treatment", "surface")
    placement: str = _d("treatment", "placement")
    bridge: Optional[float] = None


@dataclass(frozen=True)
class LoadSpec:
    preset: Optional[str] = None
    compression: Optional[float] = None
    flexion: Optional[float] = None
    extension: Optional[float] = None
    lateral_bending: Optional[float] = None
    axial_rotation: Optional[float] = None
    follower: Optional[bool] = None
    reference_point: Optional[tuple] = None
    anterior_shear: Optional[float] = None
    lateral_shear: Optional[float] = None
    levels: Optional[tuple] = None        # [[load.levels]] tables (LevelLoad fields)
    muscles: Optional[dict] = None        # [load.muscles]: {muscle: {vertebra: N}}, balance

    def to_load(self, name="", segment=None):
        """The :class:`vertebrafe.loads.Load`: the preset (if any) with the explicit values on top, the
        ``[[load.levels]]`` loads and the ``[load.muscles]`` forces as level loads (these need ``segment``,
        whose vertebral frames and centroids place them)."""
        from ..loads import LevelLoad, Load, preset
        base = preset(self.preset).as_dict() if self.preset else {}
        base = {k: v for k, v in base.items() if k in {f.name for f in dataclasses.fields(Load)}}
        for k in ("compression", "flexion", "extension", "lateral_bending", "axial_rotation", "follower",
                  "reference_point", "anterior_shear", "lateral_shear"):
            v = getattr(self, k)
            if v is not None:
                base[k] = v
        # an explicit flexion replaces a preset's extension and vice versa (both are magnitudes)
        if self.flexion and self.extension is None:
            base["extension"] = 0.0
        if self.extension and self.flexion is None:
            base["flexion"] = 0.0
        base["name"] = name or base.get("name") or ""
        base["level_loads"] = [LevelLoad(**x) for x in self.levels or ()]
        load = Load(**base)
        return self._with_muscles(load, segment) if self.muscles else load

    def _with_muscles(self, load, segment):
        from ..errors import InputError
        from ..muscles import balancing_force, balancing_muscle, muscle
        if segment is None:
            raise InputError("load.muscles: the muscle forces are placed on the vertebrae of a segment; call "
                             "to_load(segment=...)")
        forces = [muscle(segment, m, level, f) for m, table in self.muscles.items() if m != "balance"
                  for level, f in table.items()]
        if self.muscles.get("balance"):
            m, top = balancing_muscle(load.moment[0]), segment.levels[0]
            forces.append(muscle(segment, m, top, balancing_force(m, top, load.moment_Nm[0])))
        return dataclasses.replace(load, level_loads=load.level_loads + tuple(forces))


@dataclass(frozen=True)
class SolverSpec:
    solver: str = _d("solver", "solver")
    rtol: float = _d("solver", "rtol")
    maxiter: Optional[int] = None
    strength: str = _d("solver", "strength")

    def options(self):
        opts = {"solver": self.solver, "rtol": self.rtol, "strength": self.strength}
        if self.maxiter is not None:
            opts["maxiter"] = self.maxiter
        return opts


@dataclass(frozen=True)
class OutputSpec:
    vtu: bool = _d("output", "vtu")
    metrics: bool = _d("output", "metrics")


SPEC_CLASSES = {"case": CaseMeta, "segment": SegmentSpec, "bone": BoneSpec, "image": ImageSpec, "fracture": FractureSpec,
            "treatment": TreatmentSpec, "load": LoadSpec, "solver": SolverSpec, "output": OutputSpec}


@dataclass(frozen=True)
class Case:
    """A validated case. Build it with :func:`parse_case` (dict) or :func:`load_case` (file).

    ``fracture`` is None for an intact segment; ``treatment.kind == "none"`` leaves the segment as it is.
    :meth:`to_dict` gives the resolved case (every default filled in) as plain TOML-compatible values,
    and :attr:`id` a stable 12-hex-digit hash of it (without the ``case`` name and description).
    """

    segment: SegmentSpec
    bone: BoneSpec
    load: LoadSpec
    meta: CaseMeta = field(default_factory=CaseMeta)
    image: Optional[ImageSpec] = None
    fracture: Optional[FractureSpec] = None
    treatment: TreatmentSpec = field(default_factory=TreatmentSpec)
    solver: SolverSpec = field(default_factory=SolverSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    source: Optional[str] = field(default=None, compare=False)

    @property
    def name(self):
        return self.meta.name

    @property
    def treated_level(self):
        """The treated level, else the fractured level, else None."""
        if self.treatment.kind != "none":
            return self.treatment.level
        return self.fracture.level if self.fracture else None

    def to_dict(self):
        """Resolved case as a nested dict of plain values (None values dropped, tuples as lists)."""
        out = {}
        for section in SECTIONS:
            obj = self.meta if section == "case" else getattr(self, section)
            if obj is None:
                continue
            d = {}
            only = {f.name: f.only for f in SCHEMA[section]}
            for f in dataclasses.fields(obj):
                v = getattr(obj, f.name)
                if v is None or (only.get(f.name) and self.treatment.kind not in only[f.name]):
                    continue
                if section == "bone" and f.name == "t_score":
                    continue                      # resolved into bmd
                d[f.name] = _plain(v)
            out[section] = d
        return out

    @property
    def id(self):
        return case_id(self)

    def with_name(self, name):
        return dataclasses.replace(self, meta=dataclasses.replace(self.meta, name=name))


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def case_id(case):
    """Stable id (12 hex digits) of a case: SHA-256 of its resolved content without the ``[case]``
    metadata and the ``[output]`` choices, so that the same physics gives the same id whatever the case is
    called and whichever files are kept."""
    d = case.to_dict() if isinstance(case, Case) else dict(case)
    d = {k: v for k, v in d.items() if k not in ("case", "output")}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------
