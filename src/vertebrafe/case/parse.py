"""Loading and validating a case: TOML files, dotted overrides and :func:`parse_case`."""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import sys
from typing import Mapping

from ..clinical.cement import DEFAULT_VOLUME_ML
from ..clinical.fracture import DEFAULT_GRADE
from ..clinical.kyphoplasty import DEFAULT_BALLOON_VOLUME_ML, DEFAULT_RESTORATION
from ..errors import InputError
from .schema import REQUIRED, SECTIONS, CaseError, Field, level_names, preset_names, resolved_schema
from .specs import SPEC_CLASSES, Case, CaseMeta

if sys.version_info >= (3, 11):  # pragma: no cover - version dependent
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["load_toml", "load_case", "apply_overrides", "parse_case", "deep_merge", "fmt_value", "type_name"]

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
            node[parts[-1]] = deep_merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return out


def deep_merge(a, b):
    """A deep copy of ``a`` with ``b`` merged in, nested tables key by key."""
    out = copy.deepcopy(dict(a))
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def fmt_value(v):
    """``v`` as written in a case file (strings quoted, booleans lower case), for messages."""
    if isinstance(v, str):
        return repr(v) if len(v) <= 60 else f"{v[:40]!r}... ({len(v)} characters)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return "a table"
    return repr(v)


def type_name(v):
    """``"a number"``, ``"a string"``, ... : the TOML type of ``v``, for messages."""
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
        ctx.fail(path, f"= {fmt_value(v)} is {type_name(v)}; expected {want}, allowed {f.allowed()}"
                 + (f" {f.unit}" if f.unit else ""))
    x = v if integer else float(v)
    if not integer and not math.isfinite(x):
        ctx.fail(path, f"= {fmt_value(v)} is not finite; allowed {f.allowed()}")
    if f.choices:
        if x not in f.choices:
            ctx.fail(path, f"= {fmt_value(v)} is not allowed; allowed {f.allowed()}")
        return x
    below = x <= f.low if f.low_open else x < f.low
    above = x >= f.high if f.high_open else x > f.high
    if below or above:
        ctx.fail(path, f"= {fmt_value(v)} is out of range; allowed {f.allowed()}" + (f" {f.unit}" if f.unit else ""))
    return x


def _check_value(ctx, path, v, f):
    k = f.kind
    if k == "float":
        return _check_number(ctx, path, v, f)
    if k == "int":
        return _check_number(ctx, path, v, f, integer=True)
    if k == "bool":
        if not isinstance(v, bool):
            ctx.fail(path, f"= {fmt_value(v)} is {type_name(v)}; expected true or false")
        return v
    if k == "str":
        if not isinstance(v, str):
            ctx.fail(path, f"= {fmt_value(v)} is {type_name(v)}; expected a string"
                     + (f", {f.allowed()}" if f.choices else ""))
        if f.choices and v not in f.choices:
            ctx.fail(path, f"= {fmt_value(v)} is not allowed; allowed {f.allowed()}")
        text = path == "case.description"
        limit = MAX_TEXT if text else MAX_STRING
        if len(v) > limit:
            ctx.fail(path, f"= {fmt_value(v)} is too long; allowed: at most {limit} characters")
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f]" if text else r"[\x00-\x1f\x7f]", v):
            ctx.fail(path, f"= {fmt_value(v)} holds control characters (newline, tab, ...); allowed: printable text"
                     + (" and newlines" if text else ""))
        return v
    if k == "float3":
        if not isinstance(v, list) or len(v) != 3:
            shape = f"{len(v)} values" if isinstance(v, list) else type_name(v)
            ctx.fail(path, f"= {fmt_value(v)} has the wrong shape ({shape}); expected three numbers [x, y, z]"
                     + (f" in {f.unit}" if f.unit else ""))
        return tuple(_check_number(ctx, f"{path}[{i}]", x, f) for i, x in enumerate(v))
    if k == "table":
        if not isinstance(v, dict):
            ctx.fail(path, f"= {fmt_value(v)} is {type_name(v)}; expected a table")
        return _check_section(ctx, path, v, f.fields) if f.fields else v
    if k == "tables":
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            ctx.fail(path, f"= {fmt_value(v)} is {type_name(v)}; expected an array of tables ([[{path}]])")
        return tuple(_check_section(ctx, f"{path}[{i}]", x, f.fields) for i, x in enumerate(v))
    if k == "per_level":
        if not isinstance(v, dict) or not v:
            ctx.fail(path, f"= {fmt_value(v)} is {type_name(v)}; expected {f.allowed()} {f.unit}".rstrip())
        num = dataclasses.replace(f, kind="float")
        return {str(lv): _check_number(ctx, f"{path}.{lv}", x, num) for lv, x in v.items()}
    if k == "levels":
        return _check_levels(ctx, path, v)
    if k == "bmd":
        if isinstance(v, dict):
            if not v:
                ctx.fail(path, "= {} is empty; give one vBMD per vertebra, e.g. {T12 = 70, L1 = 55}")
            num = dataclasses.replace(f, kind="float")
            return {str(lv): _check_number(ctx, f"{path}.{lv}", x, num) for lv, x in v.items()}
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            ctx.fail(path, f"= {fmt_value(v)} is {type_name(v)}; expected {f.allowed()} {f.unit}")
        return _check_number(ctx, path, v, dataclasses.replace(f, kind="float"))
    raise AssertionError(k)  # pragma: no cover


def _check_levels(ctx, path, v):
    from ..anatomy.levels import level_order
    names = level_names()
    if isinstance(v, str):
        parts = v.split("-")
        if len(parts) > 2 or not all(parts):
            ctx.fail(path, f"= {fmt_value(v)} is not a level range; expected 'T12-L2' or a list of vertebrae "
                     f"among {list(names)}")
        items = parts
    elif isinstance(v, list):
        if not v:
            ctx.fail(path, "= [] is empty; expected at least one vertebra")
        items = v
    else:
        ctx.fail(path, f"= {fmt_value(v)} is {type_name(v)}; expected a range 'T12-L2' or a list of vertebrae")
    for i, n in enumerate(items):
        if not isinstance(n, str) or n not in names:
            ctx.fail(path, f"= {fmt_value(v)}: unknown level {fmt_value(n)}; allowed vertebrae {list(names)}")
    if isinstance(v, list) and len(set(v)) != len(v):
        ctx.fail(path, f"= {fmt_value(v)} repeats a vertebra")
    try:
        order = tuple(level_order(v))
    except InputError as exc:
        ctx.fail(path, f"= {fmt_value(v)}: {exc}")
    return order


def _check_section(ctx, section, raw, fields):
    if not isinstance(raw, dict):
        ctx.fail(f"[{section}]", f"= {fmt_value(raw)} is {type_name(raw)}; expected a table")
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
    value inside the schema ranges that the material laws cannot use fails here, naming its key. Without a
    vBMD (an image gives it per cell) there is nothing to check."""
    from ..errors import MaterialError
    from ..elasticity import validate
    from ..materials import MaterialSet, cancellous_elasticity

    bmd = bone.get("bmd")
    if bmd is None:
        return
    per_level = bmd if isinstance(bmd, dict) else {None: bmd}
    law = bone.get("law", "morgan2003_vertebra")
    for level, value in per_level.items():
        key = "bone.t_score" if "t_score" in bone else ("bone.bmd" if level is None else f"bone.bmd.{level}")
        try:
            E = MaterialSet(bmd=value, law=law).cancellous_E
            if not E > 0:
                raise MaterialError(f"cancellous modulus {E:g} MPa")
        except (MaterialError, InputError) as exc:
            ctx.fail(key, f"= {fmt_value(bone.get('t_score', value))} gives no usable cancellous modulus ({exc}); "
                     "allowed: a vBMD of a real vertebra, e.g. 30-250 mg/cm^3")
        if bone.get("anisotropic"):
            ratio = bone.get("transverse_ratio", 0.42)
            try:
                validate(cancellous_elasticity(E, ratio, anisotropic=True))
            except MaterialError:
                ctx.fail("bone.transverse_ratio", f"= {fmt_value(ratio)} makes the cancellous elasticity singular "
                         "(not positive definite); allowed: a ratio that is not vanishingly small, e.g. 0.1-1")


def _check_overrides(ctx, overrides, levels):
    from ..anatomy.levels import (DISC_FIELDS, DISC_RANGES, VERTEBRA_FIELDS, VERTEBRA_RANGES, segment_names)
    names = segment_names(levels)
    clean = {}
    for name, table in overrides.items():
        path = f"segment.overrides.{name}"
        if name not in names:
            ctx.fail(path, f"names a level or disc that is not in this segment; allowed: {list(names)}")
        if not isinstance(table, dict):
            ctx.fail(path, f"= {fmt_value(table)} is {type_name(table)}; expected a table of dimensions")
        is_disc = "-" in name
        allowed = DISC_FIELDS if is_disc else VERTEBRA_FIELDS
        ranges = DISC_RANGES if is_disc else VERTEBRA_RANGES
        clean[name] = {}
        for key, value in table.items():
            if key not in allowed:
                ctx.fail(f"{path}.{key}", f"is not a known {'disc' if is_disc else 'vertebra'} dimension; "
                         f"allowed: {', '.join(allowed)}")
            low, high = ranges[key] if key in ranges else (-math.inf, math.inf)
            f = Field(key, "float", low=low, high=high)
            clean[name][key] = _check_number(ctx, f"{path}.{key}", value, f)
    return clean


def _resolve_path(ctx, key, value, source):
    """``value`` relative to the case file's directory (if the case came from a file); must exist."""
    base = os.path.dirname(os.path.abspath(source)) if source and os.path.isfile(source) else os.getcwd()
    path = value if os.path.isabs(value) else os.path.join(base, value)
    if not os.path.exists(path):
        ctx.fail(key, f"= {fmt_value(value)}: no such file or directory ({path})")
    return path


def _check_image(ctx, image, seg, bone, source, raw_segment):
    """Cross-checks of an [image] case; resolves its paths in place. ``raw_segment``: [segment] as given."""
    for key in ("bmd", "t_score"):
        if key in bone:
            ctx.fail(f"bone.{key}", "is given but the vBMD comes from the CT in [image]; remove it (bone.law, "
                     "bone.anisotropic and bone.transverse_ratio still apply)")
    for key in ("scale", "overrides"):
        if key in seg and (key != "scale" or seg[key] != 1.0):
            ctx.fail(f"segment.{key}", "does not apply to an [image] case (the dimensions are measured in the image)")
    if raw_segment.get("posterior") is True:
        ctx.fail("segment.posterior", "= true needs the parametric segment; an [image] case has no posterior "
                 "elements yet (leave the key out or set it to false)")
    seg["posterior"] = False            # the default (true) is that of parametric segments
    if raw_segment.get("central_coarsening", 3) != 3:
        ctx.fail("segment.central_coarsening", f"= {fmt_value(raw_segment['central_coarsening'])} needs the parametric "
                 "segment; an [image] case keeps the default grid (leave the key out or set it to 3)")
    if raw_segment.get("annulus_refinement", 1) != 1:
        ctx.fail("segment.annulus_refinement", f"= {fmt_value(raw_segment['annulus_refinement'])} needs the parametric "
                 "segment; an [image] case keeps the default grid (leave the key out or set it to 1)")
    if raw_segment.get("articular_refinement", 1) != 1:
        ctx.fail("segment.articular_refinement", f"= {fmt_value(raw_segment['articular_refinement'])} needs the "
                 "parametric segment's posterior elements; an [image] case has none (leave the key out or set it to 1)")
    for key in ("ct", "labels", "rods"):
        if key in image:
            image[key] = _resolve_path(ctx, f"image.{key}", image[key], source)
    line = "calibration_slope" in image or "calibration_intercept" in image
    rods = "rods" in image or "rod_densities" in image
    if line == rods:
        ctx.fail("image", "needs one calibration: calibration_slope and calibration_intercept (mg/cm^3 per HU, "
                 "mg/cm^3), or rods and rod_densities")
    if line and not ("calibration_slope" in image and "calibration_intercept" in image):
        ctx.fail("image.calibration_slope", "and image.calibration_intercept: give both")
    if rods:
        if not ("rods" in image and "rod_densities" in image):
            ctx.fail("image.rods", "and image.rod_densities: give both")
        clean = {}
        for k, v in image["rod_densities"].items():
            try:
                label = int(k)
            except ValueError:
                ctx.fail(f"image.rod_densities.{k}", "is not an integer rod label")
            clean[str(label)] = _check_number(ctx, f"image.rod_densities.{k}", v, Field(k, "float", low=-100.0, high=2000.0))
        if len(clean) < 2:
            ctx.fail("image.rod_densities", "needs at least two rods")
        image["rod_densities"] = clean


def parse_case(raw, source=None, default_name=""):
    """Validate a case given as a nested dict (the content of a TOML file) and return a :class:`Case`.

    Raises :class:`CaseError` (an ``InputError``) at the first problem, with a message that names
    ``source`` (the file, default ``<case>``), the key path, the value and what is allowed.
    """
    if isinstance(raw, Case):
        return raw
    ctx = _Ctx(source)
    if not isinstance(raw, Mapping):
        ctx.fail("case", f"= {raw!r} is {type_name(raw)}; expected a table of sections")
    schema = resolved_schema()
    for key in raw:
        if key not in SECTIONS:
            ctx.fail(f"[{key}]", f"is not a known section; allowed sections: {', '.join(SECTIONS)}")
    for section, required in SECTIONS.items():
        if required and section not in raw:
            ctx.fail(f"[{section}]", "is missing; a case needs [segment], [bone] (or [image]) and [load]")
    if "bone" not in raw and "image" not in raw:
        ctx.fail("[bone]", "is missing; give the vBMD in [bone] or a CT scan in [image]")
    values = {s: _check_section(ctx, s, raw[s], schema[s]) for s in SECTIONS if s in raw}
    values.setdefault("case", {})
    values["case"].setdefault("name", "")
    if not values["case"]["name"]:
        values["case"]["name"] = default_name or ""

    seg = values["segment"]
    levels = seg["levels"]
    if "overrides" in seg:
        seg["overrides"] = _check_overrides(ctx, seg["overrides"], levels)

    bone = values.setdefault("bone", {})
    if "image" not in values and seg.get("articular_refinement", 1) != 1 and seg.get("posterior") is False:
        ctx.fail("segment.articular_refinement", f"= {fmt_value(seg['articular_refinement'])} needs the posterior "
                 "elements (segment.posterior = true); without them leave the key out or set it to 1")
    if "image" in values:
        _check_image(ctx, values["image"], seg, bone, source, raw.get("segment", {}))
    # bone: exactly one of bmd / t_score
    elif ("bmd" in bone) == ("t_score" in bone):
        ctx.fail("bone.bmd", "and bone.t_score: give exactly one of them (vBMD in mg/cm^3, or a T-score)"
                 if "bmd" in bone else "is missing; give bone.bmd (mg/cm^3, (0, 400]) or bone.t_score")
    if "t_score" in bone:
        from ..materials import bmd_from_t_score
        try:
            bmd = float(bmd_from_t_score(bone["t_score"]))
        except InputError:
            bmd = -1.0
        if not bmd > 0:
            ctx.fail("bone.t_score", f"= {fmt_value(bone['t_score'])} gives vBMD <= 0 mg/cm^3; allowed "
                     "T-scores above -5.67 with the default young-adult reference 170 +/- 30 mg/cm^3")
        bone["bmd"] = bmd
    if isinstance(bone.get("bmd"), dict):
        unknown = [k for k in bone["bmd"] if k not in levels]
        missing = [v for v in levels if v not in bone["bmd"]]
        if unknown:
            ctx.fail(f"bone.bmd.{unknown[0]}", f"is not a vertebra of segment.levels {list(levels)}")
        if missing:
            ctx.fail("bone.bmd", f"has no value for {missing}; give one vBMD (mg/cm^3) per vertebra of {list(levels)}")
        bone["bmd"] = {v: bone["bmd"][v] for v in levels}
    _check_bone(ctx, bone)

    frac = values.get("fracture")
    if frac is not None:
        if frac["level"] not in levels:
            ctx.fail("fracture.level", f"= {fmt_value(frac['level'])} is not in segment.levels {list(levels)}")
        if "grade" in frac and "height_loss" in frac:
            ctx.fail("fracture.grade", "and fracture.height_loss: give at most one of them")
        if "grade" not in frac and "height_loss" not in frac:
            frac["grade"] = DEFAULT_GRADE

    treat = values.setdefault("treatment", {"kind": "none"})
    kind = treat["kind"]
    tfields = {f.name: f for f in schema["treatment"]}
    given = set(raw.get("treatment", {}))
    for key in sorted(given):
        only = tfields[key].only
        if only and kind not in only:
            ctx.fail(f"treatment.{key}", f"does not apply to treatment.kind = {fmt_value(kind)}; it applies to "
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
            ctx.fail("treatment.level", f"= {fmt_value(treat['level'])} is not in segment.levels {list(levels)}")
        if kind == "vertebroplasty":
            if "volume" in treat and "fill" in treat:
                ctx.fail("treatment.volume", "and treatment.fill: give at most one of them")
            if "volume" not in treat and "fill" not in treat:
                treat["volume"] = DEFAULT_VOLUME_ML
            for k in ("restoration", "balloons", "rim_thickness"):
                treat.pop(k, None)
        else:
            fractured = frac is not None and frac["level"] == treat["level"]
            if "restoration" not in treat:
                treat["restoration"] = DEFAULT_RESTORATION if fractured else 0.0
            elif treat["restoration"] != 0 and not fractured:
                ctx.fail("treatment.restoration", f"= {fmt_value(treat['restoration'])} but {treat['level']} is not "
                         "fractured; allowed 0 (or add a [fracture] of that level)")
            if "volume" not in treat:
                treat["volume"] = DEFAULT_BALLOON_VOLUME_ML * treat["balloons"]
            for k in ("fill", "approach", "side", "material"):
                treat.pop(k, None)

    load = values["load"]
    explicit = [k for k in ("compression", "flexion", "extension", "lateral_bending", "axial_rotation",
                            "anterior_shear", "lateral_shear") if k in load]
    extra = [k for k in ("levels", "muscles") if k in load]
    if "preset" not in load and not explicit and not extra:
        ctx.fail("load", "has no load: give load.preset (one of " + ", ".join(preset_names())
                 + ") or at least one of compression, anterior_shear, lateral_shear (N), flexion, extension, "
                 "lateral_bending, axial_rotation (N m), [[load.levels]], [load.muscles]")
    if load.get("flexion") and load.get("extension"):
        ctx.fail("load.flexion", "and load.extension are both non-zero; give at most one (both are magnitudes)")
    _check_level_loads(ctx, load.get("levels", ()), levels)
    meta = CaseMeta(**values["case"])
    kwargs = {s: SPEC_CLASSES[s](**v) for s, v in values.items() if s != "case"}
    _check_muscles(ctx, load.get("muscles", {}), levels, kwargs["load"])
    muscle_forces = [f for k, t in load.get("muscles", {}).items() if k != "balance" for f in t.values()]
    if not load.get("preset") and _without_muscles(ctx, kwargs["load"]).is_zero and not any(muscle_forces):
        ctx.fail("load", "is zero (no force and no moment); nothing to solve")
    return Case(meta=meta, source=source, **kwargs)


def _without_muscles(ctx, spec):
    """The :class:`~vertebrafe.loads.Load` of a LoadSpec without its muscle forces (which need the mesh)."""
    try:
        return dataclasses.replace(spec, muscles=None).to_load()
    except InputError as exc:
        ctx.fail("load", f"gives no valid load: {exc}")


def _check_level_loads(ctx, items, levels):
    """Each [[load.levels]] table acts on a vertebra of the segment, within the magnitudes of LOAD_RANGES."""
    from ..loads import LOAD_RANGES
    for i, item in enumerate(items):
        path = f"load.levels[{i}]"
        if item["level"] not in levels:
            ctx.fail(f"{path}.level", f"= {fmt_value(item['level'])} is not in segment.levels {list(levels)}")
        for key, limit in (("force", "level_force"), ("moment", "level_moment")):
            size = math.hypot(*item[key])
            high, unit = LOAD_RANGES[limit][1:]
            if size > high:
                ctx.fail(f"{path}.{key}", f"= {list(item[key])} has the magnitude {size:g} {unit}; allowed at most "
                         f"{high:g} {unit}")


def _check_muscles(ctx, table, levels, spec):
    """Each muscle force acts on a vertebra of the segment where the muscle has a published moment arm;
    ``balance`` needs a sagittal moment and the balancing muscle's moment arm at the top vertebra."""
    from ..muscles import MUSCLES, balancing_muscle
    for name, forces in table.items():
        if name == "balance":
            continue
        arms = MUSCLES[name].moment_arm_mm
        for level in forces:
            if level not in levels or level not in arms:
                ctx.fail(f"load.muscles.{name}.{level}", f"is not allowed; allowed vertebrae of segment.levels "
                         f"where the {name.replace('_', ' ')} has a moment arm: {[v for v in levels if v in arms]}")
    if table.get("balance"):
        load = _without_muscles(ctx, spec)
        if not load.moment[0]:
            ctx.fail("load.muscles.balance", "= true but the load has no flexion or extension moment to balance")
        name = balancing_muscle(load.moment[0])
        if levels[0] not in MUSCLES[name].moment_arm_mm:
            ctx.fail("load.muscles.balance", f"= true: the {name.replace('_', ' ')} that balances the "
                     f"{'flexion' if load.moment[0] < 0 else 'extension'} moment has no moment arm at the top "
                     f"vertebra {levels[0]}; allowed top vertebrae {list(MUSCLES[name].moment_arm_mm)}")


# ------------------------------------------------------------------------------------------------
# Pipeline (the only place where case keys become library calls)
