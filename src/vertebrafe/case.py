"""Case files: one simulation described in TOML, validated strictly, run through the pipeline.

A case travels one way through the layers::

    segment (anatomy) -> fracture -> treatment (vertebroplasty / kyphoplasty) -> load -> simulate

This module holds the schema (:data:`SCHEMA`, one :class:`Field` per key, used for validation and for
``docs/cases.md``), the Python objects of a validated case (:class:`Case` and its section dataclasses),
the loaders (:func:`load_case`, :func:`parse_case`) and the pipeline (:func:`build_segment`,
:func:`run_case`). It is the only place where case keys are mapped onto library calls.

Validation happens before any meshing: unknown keys, wrong types, missing fields, values out of range
and inconsistent combinations are rejected with an :class:`~vertebrafe.errors.InputError` whose message
names the file, the key path, the value and what is allowed, e.g.::

    cases/bad.toml: treatment.fill = 1.5 is out of range; allowed (0, 1]

A case file is data only: TOML cannot execute code, and no value is evaluated.

>>> import vertebrafe as vf
>>> case = vf.case.parse_case({"segment": {"levels": "T12-L2"}, "bone": {"bmd": 80.0},
...                            "load": {"preset": "relaxed_standing"}})
>>> case.segment.element_size
2.0
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .errors import InputError, VertebrafeError

if sys.version_info >= (3, 11):  # pragma: no cover - version dependent
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Field", "SCHEMA", "SECTIONS", "Case", "SegmentSpec", "BoneSpec", "FractureSpec", "TreatmentSpec",
           "LoadSpec", "SolverSpec", "OutputSpec", "CaseMeta", "load_toml", "load_case", "parse_case",
           "build_segment", "run_case", "case_id", "CaseError"]

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
    ``"levels"`` (a range string ``"T12-L2"`` or a list of vertebra names), ``"table"`` (a TOML table)
    or ``"float3"`` (three numbers). ``low``/``high`` bound numbers (``low_open``/``high_open`` exclude
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

    def allowed(self):
        """Human-readable allowed values."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind in ("float", "int"):
            if self.low == -_INF and self.high == _INF:
                return "any number" if self.kind == "float" else "any integer"
            if self.high == _INF:
                return f"{'>' if self.low_open else '>='} {self.low:g}"
            if self.low == -_INF:
                return f"{'<' if self.high_open else '<='} {self.high:g}"
            return (f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}")
        return {"bool": "true or false", "str": "a string", "levels": "a range 'T12-L2' or a list of vertebrae "
                "T10..L5", "table": "a table", "float3": "three numbers [x, y, z]"}.get(self.kind, self.kind)


def _level_names():
    from .anatomy.levels import vertebra_names
    return tuple(vertebra_names())


def _law_names():
    from .materials import LAWS
    return tuple(LAWS)


def _preset_names():
    from .loads import PRESETS
    return tuple(PRESETS)


_MAT = "vertebrafe.materials (docs/materials.md)"
_CLIN = "vertebrafe.clinical (docs/clinical.md)"
_LOADS = "vertebrafe.loads (docs/loads.md)"
_ANAT = "vertebrafe.anatomy (docs/anatomy.md)"

#: section -> tuple of Field. Choices that come from other modules are filled lazily by :func:`_schema`.
SCHEMA: dict[str, tuple[Field, ...]] = {
    "case": (
        Field("name", "str", "", "label of the case in outputs (default: the file name without .toml)"),
        Field("description", "str", "", "free text"),
    ),
    "segment": (
        Field("levels", "levels", REQUIRED, "contiguous vertebrae, cranial or caudal first, e.g. 'T12-L2' or "
              "['T12', 'L1', 'L2']", source=_ANAT),
        Field("element_size", "float", 2.0, "target cell size of cancellous bone and disc", "mm", 0.5, 10.0,
              source="vertebrafe.segment default (anatomy.vertebra.DEFAULT_ELEMENT_SIZE)"),
        Field("scale", "float", 1.0, "global length factor on the table dimensions", "", 0.5, 2.0, True, True,
              source=_ANAT),
        Field("cortex_thickness", "float", 0.4, "cortical shell thickness", "mm", 0.1, 3.0, source=_ANAT),
        Field("endplate_thickness", "float", 0.35, "bony endplate thickness", "mm", 0.1, 3.0, source=_ANAT),
        Field("n_cortex_layers", "int", 1, "element layers across the cortical shell", "", 1, 4),
        Field("disc_refinement", "float", 2.0, "disc element layers per element_size of disc height", "",
              0.5, 4.0, source="vertebrafe.anatomy.disc.DISC_REFINEMENT (docs/anatomy.md)"),
        Field("overrides", "table", None, "per vertebra or disc dimension overrides, e.g. "
              "[segment.overrides.L1] anterior_height = 18.0 (fields and ranges: vertebrafe.anatomy.levels)",
              source=_ANAT),
    ),
    "bone": (
        Field("bmd", "float", None, "QCT trabecular vBMD (give bmd or t_score); sets the cancellous and the "
              "cortical shell moduli", "mg/cm^3", 0.0, 400.0,
              low_open=True, source=_MAT),
        Field("t_score", "float", None, "T-score, converted with materials.bmd_from_t_score (170 +/- 30 mg/cm^3, "
              "an assumption)", "", -8.0, 4.0, source=_MAT),
        Field("law", "str", "morgan2003_vertebra", "density-modulus law", choices=("<laws>",), source=_MAT),
        Field("anisotropic", "bool", False, "transversely isotropic cancellous bone (axis z)", source=_MAT),
        Field("transverse_ratio", "float", 0.42, "transverse / axial cancellous modulus (with anisotropic)", "",
              0.0, 1.0, low_open=True, source=_MAT),
    ),
    "fracture": (
        Field("level", "str", REQUIRED, "fractured vertebra (must be in segment.levels)"),
        Field("kind", "str", "wedge", "fracture shape", choices=("wedge", "biconcave", "crush"), source=_CLIN),
        Field("grade", "int", None, "Genant grade (1: 22.5 %, 2: 32.5 %, 3: 45 % height loss); default 2 when "
              "height_loss is not given either", "", choices=(1, 2, 3), source=_CLIN),
        Field("height_loss", "float", None, "fraction of the affected height lost (instead of grade)", "",
              0.0, 0.6, low_open=True, source=_CLIN),
        Field("damage_factor", "float", 0.25, "modulus factor of the damaged zone", "", 0.0, 1.0, low_open=True,
              source="calibrated to Wegrzyn et al. 2011 (docs/clinical.md)"),
    ),
    "treatment": (
        Field("kind", "str", "none", "management", choices=("none", "vertebroplasty", "kyphoplasty")),
        Field("level", "str", None, "treated vertebra (default: the fractured level)"),
        Field("volume", "float", None, "cement volume (default VP 2.8 mL, Buchbinder 2009; BKP 2.4 mL per "
              "balloon, FREE trial)", "mL", 0.0, 20.0, low_open=True, source=_CLIN,
              only=("vertebroplasty", "kyphoplasty")),
        Field("fill", "float", None, "cement volume as a fraction of the level's cancellous volume "
              "(instead of volume)", "", 0.0, 1.0, low_open=True, source=_CLIN, only=("vertebroplasty",)),
        Field("approach", "str", "bipedicular", "needle approach", choices=("bipedicular", "unipedicular"),
              source=_CLIN, only=("vertebroplasty",)),
        Field("side", "str", "left", "entry side of a unipedicular approach", choices=("left", "right"),
              only=("vertebroplasty",)),
        Field("material", "str", "composite", "cement phase: cement-bone composite or pure PMMA",
              choices=("composite", "pmma"), source=_CLIN, only=("vertebroplasty",)),
        Field("restoration", "float", None, "fraction of the lost height regained (default 0.5 for a fractured "
              "level, an assumption)", "", 0.0, 1.0, source=_CLIN, only=("kyphoplasty",)),
        Field("balloons", "int", 2, "balloons (2 bipedicular, 1 midline)", "", choices=(1, 2), source=_CLIN,
              only=("kyphoplasty",)),
        Field("rim_thickness", "float", 1.0, "compacted-bone rim thickness", "mm", 0.0, 5.0, source=_CLIN,
              only=("kyphoplasty",)),
        Field("offset", "float3", None, "shift of the cement in the level's local frame", "mm", -20.0, 20.0,
              source=_CLIN, only=("vertebroplasty", "kyphoplasty")),
    ),
    "load": (
        Field("preset", "str", None, "activity preset (instead of explicit values)", choices=("<presets>",),
              source=_LOADS),
        Field("compression", "float", None, "compressive force on the top endplate", "N", 0.0, 1e4, source=_LOADS),
        Field("flexion", "float", None, "flexion moment (magnitude)", "N m", 0.0, 100.0, source=_LOADS),
        Field("extension", "float", None, "extension moment (magnitude)", "N m", 0.0, 100.0, source=_LOADS),
        Field("lateral_bending", "float", None, "lateral bending moment, + bends to the right", "N m",
              -100.0, 100.0, source=_LOADS),
        Field("axial_rotation", "float", None, "axial moment, + about +z", "N m", -100.0, 100.0, source=_LOADS),
        Field("follower", "bool", None, "compression as a follower load along the curvature", source=_LOADS),
        Field("reference_point", "float3", None, "point of application (global frame); default the centroid "
              "of the top endplate", "mm", -1e3, 1e3, source=_LOADS),
    ),
    "solver": (
        Field("solver", "str", "auto", "linear solver", choices=("auto", "amg", "direct")),
        Field("rtol", "float", 1e-8, "relative residual of the iterative solve", "", 1e-14, 1e-2),
        Field("maxiter", "int", None, "iteration limit of the iterative solve (default 2000)", "", 1, 100000),
    ),
    "output": (
        Field("vtu", "bool", True, "write result.vtu (fields for ParaView / vertebrafe view)"),
        Field("metrics", "bool", True, "write metrics.csv and metrics.json"),
    ),
}

#: section order, and whether the section is required
SECTIONS = {"case": False, "segment": True, "bone": True, "fracture": False, "treatment": False,
            "load": True, "solver": False, "output": False}


def _choices(f):
    if f.choices == ("<laws>",):
        return _law_names()
    if f.choices == ("<presets>",):
        return _preset_names()
    return f.choices


def _schema():
    """SCHEMA with the lazily known choices filled in."""
    return {s: tuple(dataclasses.replace(f, choices=_choices(f)) for f in fields) for s, fields in SCHEMA.items()}


# ------------------------------------------------------------------------------------------------
# Python objects of a validated case


@dataclass(frozen=True)
class CaseMeta:
    name: str = ""
    description: str = ""


@dataclass(frozen=True)
class SegmentSpec:
    levels: tuple = ()
    element_size: float = 2.0
    scale: float = 1.0
    cortex_thickness: float = 0.4
    endplate_thickness: float = 0.35
    n_cortex_layers: int = 1
    disc_refinement: float = 2.0
    overrides: Optional[dict] = None


@dataclass(frozen=True)
class BoneSpec:
    bmd: float = 0.0
    t_score: Optional[float] = None
    law: str = "morgan2003_vertebra"
    anisotropic: bool = False
    transverse_ratio: float = 0.42


@dataclass(frozen=True)
class FractureSpec:
    level: str = ""
    kind: str = "wedge"
    grade: Optional[int] = None
    height_loss: Optional[float] = None
    damage_factor: float = 0.25


@dataclass(frozen=True)
class TreatmentSpec:
    kind: str = "none"
    level: Optional[str] = None
    volume: Optional[float] = None
    fill: Optional[float] = None
    approach: str = "bipedicular"
    side: str = "left"
    material: str = "composite"
    restoration: Optional[float] = None
    balloons: int = 2
    rim_thickness: float = 1.0
    offset: Optional[tuple] = None


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

    def to_load(self, name=""):
        """The :class:`vertebrafe.loads.Load`: the preset (if any) with the explicit values on top."""
        from .loads import Load, preset
        base = preset(self.preset).as_dict() if self.preset else {}
        base = {k: v for k, v in base.items() if k in {f.name for f in dataclasses.fields(Load)}}
        for k in ("compression", "flexion", "extension", "lateral_bending", "axial_rotation", "follower",
                  "reference_point"):
            v = getattr(self, k)
            if v is not None:
                base[k] = v
        # an explicit flexion replaces a preset's extension and vice versa (both are magnitudes)
        if self.flexion and self.extension is None:
            base["extension"] = 0.0
        if self.extension and self.flexion is None:
            base["flexion"] = 0.0
        base["name"] = name or base.get("name") or ""
        return Load(**base)


@dataclass(frozen=True)
class SolverSpec:
    solver: str = "auto"
    rtol: float = 1e-8
    maxiter: Optional[int] = None

    def options(self):
        opts = {"solver": self.solver, "rtol": self.rtol}
        if self.maxiter is not None:
            opts["maxiter"] = self.maxiter
        return opts


@dataclass(frozen=True)
class OutputSpec:
    vtu: bool = True
    metrics: bool = True


_CLASSES = {"case": CaseMeta, "segment": SegmentSpec, "bone": BoneSpec, "fracture": FractureSpec,
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
    metadata, so that the same physics gives the same id whatever the case is called."""
    d = case.to_dict() if isinstance(case, Case) else dict(case)
    d = {k: v for k, v in d.items() if k != "case"}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------
# Loading and validation


#: Largest case or study file read (bytes): these are short text files; a device or a huge file is refused.
MAX_INPUT_BYTES = 1 << 20
#: Longest string value of a case (characters); ``case.description`` may hold :data:`MAX_TEXT` and newlines.
MAX_STRING = 200
MAX_TEXT = 10_000


def load_toml(path):
    """Read a TOML file into a dict; a missing, special or oversized file and syntax errors become
    :class:`CaseError` naming the file."""
    import stat

    path = os.fspath(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise CaseError(f"{path}: is a directory, expected a .toml file")
        if not stat.S_ISREG(st.st_mode):
            raise CaseError(f"{path}: is not a regular file (a device, pipe or socket); expected a .toml file")
        if st.st_size > MAX_INPUT_BYTES:
            raise CaseError(f"{path}: {st.st_size} bytes; allowed: at most {MAX_INPUT_BYTES} bytes for a case or "
                            "study file")
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise CaseError(f"{path}: more than {MAX_INPUT_BYTES} bytes; allowed: at most {MAX_INPUT_BYTES} bytes")
        return tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise CaseError(f"{path}: file not found") from None
    except PermissionError:
        raise CaseError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CaseError(f"{path}: not UTF-8 text: {exc}") from None


def load_case(path, overrides=None):
    """Load and validate a case file. ``overrides`` (``{"bone.bmd": 60.0, ...}``) are applied to the raw
    dict before validation. Returns a :class:`Case`."""
    raw = load_toml(path)
    if overrides:
        raw = apply_overrides(raw, overrides, source=os.fspath(path))
    name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return parse_case(raw, source=os.fspath(path), default_name=name)


def apply_overrides(raw, overrides, source="<case>"):
    """A deep copy of ``raw`` with dotted ``{"section.key": value}`` assignments applied. Nested dict values
    are merged key by key."""
    out = copy.deepcopy(dict(raw))
    for path, value in overrides.items():
        if not isinstance(path, str) or not path:
            raise CaseError(f"{source}: override key {path!r}; expected 'section.key'")
        parts = path.split(".")
        node = out
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise CaseError(f"{source}: {path} = {value!r}: {p!r} is not a table")
            node = nxt
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = _deep_merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return out


def _deep_merge(a, b):
    out = copy.deepcopy(dict(a))
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _fmt(v):
    if isinstance(v, str):
        return repr(v) if len(v) <= 60 else f"{v[:40]!r}... ({len(v)} characters)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return "a table"
    return repr(v)


def _typename(v):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)


class _Ctx:
    def __init__(self, source):
        self.source = source or "<case>"

    def fail(self, path, msg):
        raise CaseError(f"{self.source}: {path} {msg}")


def _check_number(ctx, path, v, f, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        want = "an integer" if integer else "a number"
        ctx.fail(path, f"= {_fmt(v)} is {_typename(v)}; expected {want}, allowed {f.allowed()}"
                 + (f" {f.unit}" if f.unit else ""))
    x = v if integer else float(v)
    if not integer and not math.isfinite(x):
        ctx.fail(path, f"= {_fmt(v)} is not finite; allowed {f.allowed()}")
    if f.choices:
        if x not in f.choices:
            ctx.fail(path, f"= {_fmt(v)} is not allowed; allowed {f.allowed()}")
        return x
    below = x <= f.low if f.low_open else x < f.low
    above = x >= f.high if f.high_open else x > f.high
    if below or above:
        ctx.fail(path, f"= {_fmt(v)} is out of range; allowed {f.allowed()}" + (f" {f.unit}" if f.unit else ""))
    return x


def _check_value(ctx, path, v, f):
    k = f.kind
    if k == "float":
        return _check_number(ctx, path, v, f)
    if k == "int":
        return _check_number(ctx, path, v, f, integer=True)
    if k == "bool":
        if not isinstance(v, bool):
            ctx.fail(path, f"= {_fmt(v)} is {_typename(v)}; expected true or false")
        return v
    if k == "str":
        if not isinstance(v, str):
            ctx.fail(path, f"= {_fmt(v)} is {_typename(v)}; expected a string"
                     + (f", {f.allowed()}" if f.choices else ""))
        if f.choices and v not in f.choices:
            ctx.fail(path, f"= {_fmt(v)} is not allowed; allowed {f.allowed()}")
        text = path == "case.description"
        limit = MAX_TEXT if text else MAX_STRING
        if len(v) > limit:
            ctx.fail(path, f"= {_fmt(v)} is too long; allowed: at most {limit} characters")
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f]" if text else r"[\x00-\x1f\x7f]", v):
            ctx.fail(path, f"= {_fmt(v)} holds control characters (newline, tab, ...); allowed: printable text"
                     + (" and newlines" if text else ""))
        return v
    if k == "float3":
        if not isinstance(v, list) or len(v) != 3:
            shape = f"{len(v)} values" if isinstance(v, list) else _typename(v)
            ctx.fail(path, f"= {_fmt(v)} has the wrong shape ({shape}); expected three numbers [x, y, z]"
                     + (f" in {f.unit}" if f.unit else ""))
        return tuple(_check_number(ctx, f"{path}[{i}]", x, f) for i, x in enumerate(v))
    if k == "table":
        if not isinstance(v, dict):
            ctx.fail(path, f"= {_fmt(v)} is {_typename(v)}; expected a table")
        return v
    if k == "levels":
        return _check_levels(ctx, path, v)
    raise AssertionError(k)  # pragma: no cover


def _check_levels(ctx, path, v):
    from .anatomy.levels import level_order
    names = _level_names()
    if isinstance(v, str):
        parts = v.split("-")
        if len(parts) > 2 or not all(parts):
            ctx.fail(path, f"= {_fmt(v)} is not a level range; expected 'T12-L2' or a list of vertebrae "
                     f"among {list(names)}")
        items = parts
    elif isinstance(v, list):
        if not v:
            ctx.fail(path, "= [] is empty; expected at least one vertebra")
        items = v
    else:
        ctx.fail(path, f"= {_fmt(v)} is {_typename(v)}; expected a range 'T12-L2' or a list of vertebrae")
    for i, n in enumerate(items):
        if not isinstance(n, str) or n not in names:
            ctx.fail(path, f"= {_fmt(v)}: unknown level {_fmt(n)}; allowed vertebrae {list(names)}")
    if isinstance(v, list) and len(set(v)) != len(v):
        ctx.fail(path, f"= {_fmt(v)} repeats a vertebra")
    try:
        order = tuple(level_order(v))
    except InputError as exc:
        ctx.fail(path, f"= {_fmt(v)}: {exc}")
    return order


def _check_section(ctx, section, raw, fields):
    if not isinstance(raw, dict):
        ctx.fail(f"[{section}]", f"= {_fmt(raw)} is {_typename(raw)}; expected a table")
    by_name = {f.name: f for f in fields}
    for key in raw:
        if key not in by_name:
            ctx.fail(f"{section}.{key}", f"is not a known key; allowed keys in [{section}]: "
                     f"{', '.join(by_name)}")
    out = {}
    for f in fields:
        path = f"{section}.{f.name}"
        if f.name in raw:
            out[f.name] = _check_value(ctx, path, raw[f.name], f)
        elif f.default is REQUIRED:
            ctx.fail(path, f"is missing; required ({f.doc})")
        elif f.default is not None:
            out[f.name] = f.default
    return out


def _check_bone(ctx, bone):
    """The cancellous elasticity of ``bone`` (validated values) exists and is positive definite, so that a
    value inside the schema ranges that the material laws cannot use fails here, naming its key."""
    from .errors import MaterialError
    from .fem.elasticity import validate
    from .materials import MaterialSet, cancellous_elasticity

    key = "bone.t_score" if "t_score" in bone else "bone.bmd"
    try:
        E = MaterialSet(bmd=bone["bmd"], law=bone.get("law", "morgan2003_vertebra")).cancellous_E
        if not E > 0:
            raise MaterialError(f"cancellous modulus {E:g} MPa")
    except (MaterialError, InputError) as exc:
        ctx.fail(key, f"= {_fmt(bone.get('t_score', bone['bmd']))} gives no usable cancellous modulus ({exc}); "
                 "allowed: a vBMD of a real vertebra, e.g. 30-250 mg/cm^3")
    if bone.get("anisotropic"):
        ratio = bone.get("transverse_ratio", 0.42)
        try:
            validate(cancellous_elasticity(E, ratio, anisotropic=True))
        except MaterialError:
            ctx.fail("bone.transverse_ratio", f"= {_fmt(ratio)} makes the cancellous elasticity singular "
                     "(not positive definite); allowed: a ratio that is not vanishingly small, e.g. 0.1-1")


def _check_overrides(ctx, overrides, levels):
    from .anatomy.levels import (DISC_FIELDS, DISC_RANGES, VERTEBRA_FIELDS, VERTEBRA_RANGES, segment_names)
    names = segment_names(levels)
    clean = {}
    for name, table in overrides.items():
        path = f"segment.overrides.{name}"
        if name not in names:
            ctx.fail(path, f"names a level or disc that is not in this segment; allowed: {list(names)}")
        if not isinstance(table, dict):
            ctx.fail(path, f"= {_fmt(table)} is {_typename(table)}; expected a table of dimensions")
        is_disc = "-" in name
        allowed = DISC_FIELDS if is_disc else VERTEBRA_FIELDS
        ranges = DISC_RANGES if is_disc else VERTEBRA_RANGES
        clean[name] = {}
        for key, value in table.items():
            if key not in allowed:
                ctx.fail(f"{path}.{key}", f"is not a known {'disc' if is_disc else 'vertebra'} dimension; "
                         f"allowed: {', '.join(allowed)}")
            low, high = ranges[key] if key in ranges else (-_INF, _INF)
            f = Field(key, "float", low=low, high=high)
            clean[name][key] = _check_number(ctx, f"{path}.{key}", value, f)
    return clean


def parse_case(raw, source=None, default_name=""):
    """Validate a case given as a nested dict (the content of a TOML file) and return a :class:`Case`.

    Raises :class:`CaseError` (an ``InputError``) at the first problem, with a message that names
    ``source`` (the file, default ``<case>``), the key path, the value and what is allowed.
    """
    if isinstance(raw, Case):
        return raw
    ctx = _Ctx(source)
    if not isinstance(raw, Mapping):
        ctx.fail("case", f"= {raw!r} is {_typename(raw)}; expected a table of sections")
    schema = _schema()
    for key in raw:
        if key not in SECTIONS:
            ctx.fail(f"[{key}]", f"is not a known section; allowed sections: {', '.join(SECTIONS)}")
    for section, required in SECTIONS.items():
        if required and section not in raw:
            ctx.fail(f"[{section}]", "is missing; a case needs [segment], [bone] and [load]")
    values = {s: _check_section(ctx, s, raw[s], schema[s]) for s in SECTIONS if s in raw}
    values.setdefault("case", {})
    values["case"].setdefault("name", "")
    if not values["case"]["name"]:
        values["case"]["name"] = default_name or ""

    seg = values["segment"]
    levels = seg["levels"]
    if "overrides" in seg:
        seg["overrides"] = _check_overrides(ctx, seg["overrides"], levels)

    # bone: exactly one of bmd / t_score
    bone = values["bone"]
    if ("bmd" in bone) == ("t_score" in bone):
        ctx.fail("bone.bmd", "and bone.t_score: give exactly one of them (vBMD in mg/cm^3, or a T-score)"
                 if "bmd" in bone else "is missing; give bone.bmd (mg/cm^3, (0, 400]) or bone.t_score")
    if "t_score" in bone:
        from .materials import bmd_from_t_score
        try:
            bmd = float(bmd_from_t_score(bone["t_score"]))
        except InputError:
            bmd = -1.0
        if not bmd > 0:
            ctx.fail("bone.t_score", f"= {_fmt(bone['t_score'])} gives vBMD <= 0 mg/cm^3; allowed "
                     "T-scores above -5.67 with the default young-adult reference 170 +/- 30 mg/cm^3")
        bone["bmd"] = bmd
    _check_bone(ctx, bone)

    frac = values.get("fracture")
    if frac is not None:
        if frac["level"] not in levels:
            ctx.fail("fracture.level", f"= {_fmt(frac['level'])} is not in segment.levels {list(levels)}")
        if "grade" in frac and "height_loss" in frac:
            ctx.fail("fracture.grade", "and fracture.height_loss: give at most one of them")
        if "grade" not in frac and "height_loss" not in frac:
            frac["grade"] = 2

    treat = values.setdefault("treatment", {"kind": "none"})
    kind = treat["kind"]
    tfields = {f.name: f for f in schema["treatment"]}
    given = set(raw.get("treatment", {}))
    for key in sorted(given):
        only = tfields[key].only
        if only and kind not in only:
            ctx.fail(f"treatment.{key}", f"does not apply to treatment.kind = {_fmt(kind)}; it applies to "
                     f"{' and '.join(only)}")
    if kind == "none":
        if "level" in given:
            ctx.fail("treatment.level", "is given but treatment.kind = 'none'; remove it or choose "
                     "'vertebroplasty' or 'kyphoplasty'")
        treat = {"kind": "none"}
    else:
        if "level" not in treat:
            if frac is None:
                ctx.fail("treatment.level", f"is missing; required for {kind} of an intact segment (no "
                         "[fracture]); one of " + ", ".join(levels))
            treat["level"] = frac["level"]
        if treat["level"] not in levels:
            ctx.fail("treatment.level", f"= {_fmt(treat['level'])} is not in segment.levels {list(levels)}")
        if kind == "vertebroplasty":
            if "volume" in treat and "fill" in treat:
                ctx.fail("treatment.volume", "and treatment.fill: give at most one of them")
            if "volume" not in treat and "fill" not in treat:
                treat["volume"] = 2.8
            for k in ("restoration", "balloons", "rim_thickness"):
                treat.pop(k, None)
        else:
            fractured = frac is not None and frac["level"] == treat["level"]
            if "restoration" not in treat:
                treat["restoration"] = 0.5 if fractured else 0.0
            elif treat["restoration"] != 0 and not fractured:
                ctx.fail("treatment.restoration", f"= {_fmt(treat['restoration'])} but {treat['level']} is not "
                         "fractured; allowed 0 (or add a [fracture] of that level)")
            if "volume" not in treat:
                treat["volume"] = 2.4 * treat.get("balloons", 2)
            for k in ("fill", "approach", "side", "material"):
                treat.pop(k, None)

    load = values["load"]
    explicit = [k for k in ("compression", "flexion", "extension", "lateral_bending", "axial_rotation")
                if k in load]
    if "preset" not in load and not explicit:
        ctx.fail("load", "has no load: give load.preset (one of " + ", ".join(_preset_names())
                 + ") or at least one of compression (N), flexion, extension, lateral_bending, "
                 "axial_rotation (N m)")
    if load.get("flexion") and load.get("extension"):
        ctx.fail("load.flexion", "and load.extension are both non-zero; give at most one (both are magnitudes)")
    if not load.get("preset"):
        if all(load.get(k, 0.0) == 0.0 for k in explicit):
            ctx.fail("load", "is zero (no compression and no moment); nothing to solve")
    meta = CaseMeta(**values["case"])
    kwargs = {s: _CLASSES[s](**v) for s, v in values.items() if s != "case"}
    return Case(meta=meta, source=source, **kwargs)


# ------------------------------------------------------------------------------------------------
# Pipeline (the only place where case keys become library calls)


def build_segment(case, progress=None, *, force=False):
    """Segment -> fracture -> treatment of a validated case; returns the :class:`~vertebrafe.Segment`.

    ``progress`` is an optional callable ``progress(stage: str)`` called before each stage. Before meshing
    the model's size and memory are estimated (:mod:`vertebrafe.resources`); a model that does not fit in
    the available memory raises :class:`~vertebrafe.errors.ResourceError` unless ``force``. A treatment
    whose cement volume is not achieved within :data:`VOLUME_TOLERANCE` raises :class:`CaseError`.
    """
    import vertebrafe as vf
    from .materials import MaterialSet
    from .resources import check_memory, estimate_segment

    case = parse_case(case) if not isinstance(case, Case) else case
    step = progress or (lambda stage: None)
    s, b = case.segment, case.bone
    check_memory(estimate_segment(s.levels, s.element_size, s.scale, s.n_cortex_layers, s.overrides),
                 f"segment.element_size = {s.element_size:g} mm on {s.levels[0]}-{s.levels[-1]}", force=force)
    materials = MaterialSet(bmd=b.bmd, law=b.law, anisotropic=b.anisotropic, transverse_ratio=b.transverse_ratio)
    step("mesh")
    seg = vf.segment(list(s.levels), element_size=s.element_size, overrides=s.overrides, scale=s.scale,
                     materials=materials, cortex_thickness=s.cortex_thickness,
                     endplate_thickness=s.endplate_thickness, n_cortex_layers=s.n_cortex_layers,
                     disc_refinement=s.disc_refinement)
    if case.fracture is not None:
        f = case.fracture
        step("fracture")
        seg = vf.fracture(seg, f.level, kind=f.kind, grade=f.grade, height_loss=f.height_loss,
                          damage_factor=f.damage_factor)
    t = case.treatment
    if t.kind != "none":
        step(t.kind)
        treated = _treat(seg, t, t.offset if t.offset is not None else (0.0, 0.0, 0.0))
        _check_volume(case, treated)
        if t.offset is not None and any(t.offset):
            _check_offset(t, treated, _treat(seg, t, (0.0, 0.0, 0.0)))
        seg = treated
    return seg


def _treat(seg, t, offset):
    import vertebrafe as vf
    if t.kind == "vertebroplasty":
        return vf.vertebroplasty(seg, t.level, volume=t.volume, fill=t.fill, approach=t.approach, side=t.side,
                                 material=t.material, offset=offset)
    return vf.kyphoplasty(seg, t.level, restoration=t.restoration, volume=t.volume, balloons=t.balloons,
                          rim_thickness=t.rim_thickness, offset=offset)


#: Largest relative difference between the requested and the achieved cement volume of a case.
VOLUME_TOLERANCE = 0.10


def _check_volume(case, seg):
    """The cement volume of ``case.treatment`` was achieved within :data:`VOLUME_TOLERANCE`."""
    t = case.treatment
    res = seg.history[-1].results
    err = res.get("volume_error")
    if err is None or abs(err) <= VOLUME_TOLERANCE:
        return
    key = "treatment.fill" if t.fill is not None else "treatment.volume"
    raise CaseError(f"{key} = {_fmt(t.fill if t.fill is not None else t.volume)}: the cement placed in {t.level} is "
                    f"{res.get('cement_volume_mL', float('nan')):.3g} mL, {100 * err:+.0f} % off the requested "
                    f"volume (allowed within {100 * VOLUME_TOLERANCE:.0f} %); use a volume the mesh resolves (a "
                    "smaller segment.element_size) and that fits in the cancellous bone")


def _check_offset(t, shifted, centred):
    """The cement centroid of ``shifted`` moved by at least half the requested ``t.offset`` (mm) from that of
    ``centred`` (the same treatment without offset): otherwise the shifted cement leaves the body."""
    import numpy as np

    def centroid(seg):
        w = seg.mesh.cell_data["cement_fraction"] * seg.mesh.cell_volumes()
        return w @ seg.mesh.cell_centers() / w.sum()

    want = float(np.linalg.norm(t.offset))
    moved = float(np.linalg.norm(centroid(shifted) - centroid(centred)))
    if not moved >= 0.5 * want:
        raise CaseError(f"treatment.offset = {_fmt(list(t.offset))} mm: the cement centroid moved {moved:.3g} mm of "
                        f"the requested {want:.3g} mm; the shifted cement leaves the cancellous bone of {t.level}; "
                        "allowed: an offset that keeps the cement inside the body")


def _as_case(case_or_path, overrides=None):
    if isinstance(case_or_path, Case):
        if overrides:
            raise InputError("overrides apply to a case file or dict, not to a parsed Case")
        return case_or_path
    if isinstance(case_or_path, (str, os.PathLike)):
        return load_case(case_or_path, overrides)
    if isinstance(case_or_path, Mapping):
        raw = apply_overrides(case_or_path, overrides) if overrides else case_or_path
        return parse_case(raw)
    raise InputError(f"case = {case_or_path!r}; expected a path to a .toml file, a dict or a Case")


def run_case(case, out=None, *, overrides=None, progress=False, log=None, overwrite=False, force=False):
    """Run one case: validate, mesh, fracture, treat, load, solve, post-process.

    Parameters
    ----------
    case : str, os.PathLike, dict or Case
        A case file, its content as a dict, or a :class:`Case`.
    out : str or os.PathLike, optional
        Directory to write ``result.vtu`` (unless ``[output] vtu = false``), ``metrics.csv``,
        ``metrics.json``, ``case.json`` (the resolved record of :meth:`Result.record`) and ``case.toml``
        (the resolved case file) into. ``out`` must be new or empty (checked before the solve); see
        :func:`save_result`.
    overrides : dict, optional
        Dotted assignments ``{"bone.bmd": 60.0}`` applied before validation (file or dict cases).
    progress : bool
        Show a tqdm progress bar of the stages (mesh, fracture, treatment, solve, save).
    log : callable, optional
        ``log(message)`` for stage messages (verbose mode).
    overwrite : bool
        Allow ``out`` to hold an earlier run output; only the files vertebrafe wrote there are replaced.

    Returns
    -------
    vertebrafe.simulate.Result
        With ``.metrics`` (tidy DataFrame), ``.compare(reference)``, ``.save(directory)``; ``.case_spec``
        is the :class:`Case`.
    """
    from .simulate import simulate

    case = _as_case(case, overrides)
    if out is not None:
        from .outputs import check_output_dir
        check_output_dir(out, "run", overwrite=overwrite, option="out")
    name = case.name or case.id
    stages = ["mesh"] + (["fracture"] if case.fracture else []) + \
             ([case.treatment.kind] if case.treatment.kind != "none" else []) + ["solve"] + (["save"] if out else [])
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(stages), desc=name, unit="stage", leave=False, file=sys.stderr)
    t0 = time.perf_counter()
    timings = {}
    last = [None, t0]

    def step(stage):
        now = time.perf_counter()
        if last[0] is not None:
            timings[f"{last[0]}_s"] = now - last[1]
            if bar is not None:
                bar.update(1)
        last[0], last[1] = stage, now
        if bar is not None and stage is not None:
            bar.set_postfix_str(stage)
        if log and stage is not None:
            log(f"{name}: {stage}")

    try:
        seg = build_segment(case, progress=step, force=force)
        step("solve")
        load = case.load.to_load(name=case.load.preset or "")
        result = simulate(seg, load, case=name, **case.solver.options())
        if out is not None:
            step("save")
            save_result(result, case, out, overwrite=overwrite)
        step(None)
    finally:
        if bar is not None:
            bar.close()
    timings["total_s"] = time.perf_counter() - t0
    result.case_spec = case
    result.case_timings = timings
    return result


def to_toml(d):
    """Serialise a resolved case dict (nested tables of scalars, strings, lists) as TOML text."""
    lines = []

    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v) if not isinstance(v, float) or math.isfinite(v) else ("nan" if v != v else
                                                                               ("inf" if v > 0 else "-inf"))
        if isinstance(v, str):
            return _toml_string(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} to TOML")

    def table(prefix, d):
        plain = {k: v for k, v in d.items() if not isinstance(v, dict)}
        sub = {k: v for k, v in d.items() if isinstance(v, dict)}
        if prefix and (plain or not sub):
            lines.append(f"[{prefix}]")
        for k, v in plain.items():
            lines.append(f"{_key(k)} = {scalar(v)}")
        if plain:
            lines.append("")
        for k, v in sub.items():
            table(f"{prefix}.{_key(k)}" if prefix else _key(k), v)

    table("", d)
    return "\n".join(lines).rstrip() + "\n"


def _toml_string(v):
    """A TOML basic string: every control character escaped, other characters (any plane) kept."""
    return '"' + re.sub(r'[\x00-\x1f\x7f"\\]', lambda m: {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}.get(
        m.group(), f"\\u{ord(m.group()):04x}"), v) + '"'


def _key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_string(k)


def _comment(text):
    """``text`` as the rest of one TOML comment line (control characters replaced)."""
    return re.sub(r"[\x00-\x1f\x7f]", "?", str(text))[:200]


def save_result(result, case, out, *, overwrite=False):
    """Write a result and its resolved case into folder ``out`` (see :func:`vertebrafe.outputs.publish`):
    ``out`` must be new or empty, or with ``overwrite`` an earlier run output, of which only the files
    vertebrafe wrote are replaced. Returns the absolute path of ``out``."""
    from .outputs import publish

    def write(tmp):
        result.save(tmp)
        if not case.output.vtu:
            os.remove(os.path.join(tmp, "result.vtu"))
        if not case.output.metrics:
            for n in ("metrics.csv", "metrics.json"):
                os.remove(os.path.join(tmp, n))
        with open(os.path.join(tmp, "case.toml"), "w") as f:
            f.write(_comment(f"# resolved case {case.id} ({case.name}); vertebrafe {_version()}") + "\n")
            f.write(to_toml(case.to_dict()))

    return publish(write, out, "run", overwrite=overwrite)


def _replace_dir(tmp, final):
    """Move directory ``tmp`` to ``final``, replacing an existing ``final`` (POSIX rename is atomic; an old
    directory is first renamed aside, then deleted). Only for folders vertebrafe itself owns (a study's
    ``cases/<id>``)."""
    import shutil
    if os.path.lexists(final):
        aside = f"{final}.old-{os.getpid()}-{time.monotonic_ns()}"
        os.replace(final, aside)
        os.replace(tmp, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _version():
    from ._version import __version__
    return __version__
