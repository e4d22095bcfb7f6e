"""The study file: a base case and a sweep (grid, variants), expanded into validated cases."""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import os
from dataclasses import dataclass, field
from typing import Optional

from ..case import (SCHEMA, Case, CaseError, apply_overrides, deep_merge, fmt_value, load_toml, parse_case,
                    type_name)
from ..case.parse import MAX_STRING
from ..errors import ResourceError
from ..outputs import check_name, safe_name
from ..report import PlotSpec

__all__ = ["Variant", "SummarySpec", "StudyCase", "Study", "load_study", "parse_study"]

# ------------------------------------------------------------------------------------------------
# Study file

#: Most cases one study may expand to (a guard against a grid that would take days and gigabytes to list).
MAX_CASES = 10_000


@dataclass(frozen=True)
class Variant:
    """A named set of case changes (``set``: dotted key -> value) with its own grid."""

    name: str
    set: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)



@dataclass(frozen=True)
class SummarySpec:
    reference: Optional[str] = None
    plots: tuple = ()


@dataclass(frozen=True)
class StudyCase:
    """One case of a study: its id, variant, swept parameters (dotted key -> value) and the Case."""

    id: str
    variant: str
    params: dict
    case: Case

    @property
    def name(self):
        return self.case.name


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    source: Optional[str]
    base: dict
    grid: dict
    variants: tuple
    summary: SummarySpec
    cases: tuple

    @property
    def parameters(self):
        """Swept keys in order of appearance (grid keys, then variant keys)."""
        keys = list(self.grid)
        for v in self.variants:
            for k in list(v.set) + list(v.grid):
                if k not in keys:
                    keys.append(k)
        return keys

    def to_dict(self):
        """A JSON-ready description (written to ``DIR/study.json``)."""
        return {"name": self.name, "description": self.description, "source": self.source,
                "parameters": self.parameters, "grid_keys": list(self.grid),
                "reference": self.summary.reference,
                "plots": [dataclasses.asdict(p) for p in self.summary.plots],
                "cases": [{"id": c.id, "name": c.name, "variant": c.variant, "params": c.params,
                           "case": c.case.to_dict()} for c in self.cases]}


_STUDY_KEYS = ("name", "description", "base")
_TOP_KEYS = ("study", "base", "grid", "variants", "summary")
_VARIANT_KEYS = ("name", "set", "grid")
_PLOT_FIELDS = {f.name for f in dataclasses.fields(PlotSpec)}
_Y = ("ratio", "value", "change")


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _fail(source, path, msg):
    raise CaseError(f"{source}: {path} {msg}")


def _check_grid(source, path, grid, prefix=""):
    """Swept case keys ``{"section.key": [values]}`` of a grid table; nested tables (``[grid.bone] bmd =
    [...]``) give the same dotted keys as ``"bone.bmd" = [...]``."""
    if not isinstance(grid, dict):
        _fail(source, path, f"= {fmt_value(grid)} is {type_name(grid)}; expected a table of key = [values]")
    flat = {}
    for key, values in grid.items():
        if isinstance(values, dict):
            flat.update(_check_grid(source, f"{path}.{key}", values, prefix=f"{prefix}{key}."))
            continue
        if not isinstance(values, list) or not values:
            _fail(source, f"{path}.{key}", f"= {fmt_value(values)} is {type_name(values)}; expected a non-empty "
                  "array of values to sweep")
        if "." not in prefix + key:
            _fail(source, f"{path}.{key}", "is not a case key; expected 'section.key', e.g. \"bone.bmd\"")
        flat[prefix + key] = list(values)
    return flat


def load_study(path, overrides=None):
    """Load a study file; ``overrides`` (dotted ``{"segment.element_size": 3.0}``) change the base case of
    every variant. Returns a :class:`Study` with every case validated."""
    path = os.fspath(path)
    return parse_study(load_toml(path), source=path, overrides=overrides)


def parse_study(raw, source="<study>", overrides=None):
    """Validate a study given as a dict (content of a study file) and expand its cases."""
    if not isinstance(raw, dict):
        _fail(source, "study", f"= {raw!r}; expected a table")
    for k in raw:
        if k not in _TOP_KEYS:
            _fail(source, f"[{k}]", f"is not a known study section; allowed: {', '.join(_TOP_KEYS)} (a case file "
                  "is run with 'vertebrafe run')")
    meta = raw.get("study")
    if not isinstance(meta, dict):
        _fail(source, "[study]", "is missing; a study file starts with [study] name = \"...\"")
    for k in meta:
        if k not in _STUDY_KEYS:
            _fail(source, f"study.{k}", f"is not a known key; allowed: {', '.join(_STUDY_KEYS)}")
    for k in ("name", "description", "base"):
        if k in meta and not isinstance(meta[k], str):
            _fail(source, f"study.{k}", f"= {fmt_value(meta[k])} is {type_name(meta[k])}; expected a string")
    default_name = os.path.splitext(os.path.basename(source))[0] if source and source != "<study>" else "study"
    name = meta.get("name") or default_name

    base = {}
    if "base" in meta:
        here = os.path.dirname(os.path.abspath(source)) if source != "<study>" else os.getcwd()
        base_path = os.path.join(here, meta["base"])
        base = load_toml(base_path)
    inline = raw.get("base", {})
    if not isinstance(inline, dict):
        _fail(source, "[base]", f"= {fmt_value(inline)} is {type_name(inline)}; expected a table")
    base = deep_merge(base, inline)
    base.pop("case", None)
    if overrides:
        base = apply_overrides(base, overrides, source=source)

    grid = _check_grid(source, "grid", raw.get("grid", {}))
    variants = []
    raw_variants = raw.get("variants", [])
    if not isinstance(raw_variants, list):
        _fail(source, "variants", "must be an array of tables: [[variants]]")
    for i, v in enumerate(raw_variants):
        p = f"variants[{i}]"
        if not isinstance(v, dict):
            _fail(source, p, f"= {fmt_value(v)}; expected a table")
        for k in v:
            if k not in _VARIANT_KEYS:
                _fail(source, f"{p}.{k}", f"is not a known key; allowed: {', '.join(_VARIANT_KEYS)} (put case "
                      "keys in set = {...})")
        vname = v.get("name")
        if not isinstance(vname, str) or not vname:
            _fail(source, f"{p}.name", f"= {fmt_value(vname)}; expected a non-empty string")
        if vname in [x.name for x in variants]:
            _fail(source, f"{p}.name", f"= {fmt_value(vname)} is used twice; variant names must be unique")
        vset = v.get("set", {})
        if not isinstance(vset, dict):
            _fail(source, f"{p}.set", f"= {fmt_value(vset)} is {type_name(vset)}; expected a table of case keys")
        vgrid = _check_grid(source, f"{p}.grid", v.get("grid", {}))
        both = sorted(set(vgrid) & set(grid))
        if both:
            _fail(source, f"{p}.grid.{both[0]}", "is also in [grid]; sweep a key in one place only")
        variants.append(Variant(vname, _flatten(vset), vgrid))
    summary = _parse_summary(source, raw.get("summary", {}), [v.name for v in variants])
    _check_plots(source, summary, grid, variants)

    total = sum(math.prod(len(v) for v in list(grid.values()) + list(variant.grid.values()))
                for variant in variants or [Variant("")])
    if total > MAX_CASES:
        raise ResourceError(f"{source}: [grid] and the variants' grids give {total} cases; allowed: at most "
                            f"{MAX_CASES} cases in one study (split it into several studies)")
    cases, seen = [], {}
    for variant in variants or [Variant("")]:
        keys = list(grid) + list(variant.grid)
        for combo in itertools.product(*(list(grid.values()) + list(variant.grid.values()))):
            params = dict(variant.set)
            params.update(zip(keys, combo))
            label = ", ".join(f"{k}={fmt_value(v)}" for k, v in zip(keys, combo))
            where = f"{source} (variant {variant.name!r}{': ' + label if label else ''})" if variant.name \
                else f"{source} ({label})"
            case_raw = apply_overrides(_for_kind(base, params.get("treatment.kind")), params, source=where)
            cname = "-".join([variant.name] * bool(variant.name) + [_slug(k, v) for k, v in zip(keys, combo)])
            if len(cname) > MAX_STRING:
                cname = f"{cname[:MAX_STRING - 13]}~{hashlib.sha256(cname.encode()).hexdigest()[:12]}"
            case_raw.setdefault("case", {})["name"] = cname or name
            case = parse_case(case_raw, source=where)
            cid = case.id
            if cid in seen:
                continue                       # the same physics twice (e.g. a swept key that does not apply)
            seen[cid] = True
            cases.append(StudyCase(cid, variant.name, {k: params[k] for k in params}, case))
    if not cases:
        _fail(source, "grid", "gives no case")
    return Study(name, meta.get("description", ""), source, base, grid, tuple(variants), summary, tuple(cases))


def _for_kind(base, kind):
    """``base`` with the treatment keys that do not apply to treatment kind ``kind`` removed (a variant that
    switches a VP base case to NSM or BKP should not inherit, say, ``approach``)."""
    t = base.get("treatment")
    if kind is None or not isinstance(t, dict) or t.get("kind", "none") == kind:
        return base
    only = {f.name: f.only for f in SCHEMA["treatment"]}
    keep = {k: v for k, v in t.items() if k in ("kind", "level") or (only.get(k) and kind in only[k])}
    if kind == "none":
        keep = {}
    return {**base, "treatment": keep}


def _slug(key, value):
    parts = key.split(".")
    short = "_".join(parts[2:]) + "_" if parts[:2] == ["load", "muscles"] else parts[-1]   # erector_spinae_L1_300
    return f"{short}{fmt_value(value).strip(chr(39))}"


_RELATIONS = ("adjacent", "treated", "adjacent_superior", "adjacent_inferior", "disc_superior", "disc_inferior",
              "remote", "segment")


def _check_plots(source, summary, grid, variants):
    """Every plot names a known metric, region and relation, its ``x``, ``hue`` and ``facet`` are swept keys
    (or ``variant``), and every swept dimension is on one of them (nothing is averaged away)."""
    import difflib

    from ..materials import REGIONS
    from ..case.schema import level_names
    from ..post.metrics import METRIC_NAMES, REFERENCE_REGIONS
    from ..post.posterior import REGIONS as POSTERIOR_REGIONS

    sizes = {}
    for v in variants or [Variant("")]:
        for k, values in list(grid.items()) + list(v.grid.items()):
            sizes[k] = max(sizes.get(k, 0), len(values))
    swept = list(sizes)
    regions = sorted(set(REGIONS) | set(REFERENCE_REGIONS) | set(POSTERIOR_REGIONS) | {"bone", "vertebra", "disc",
                                                                                           "segment"})
    levels = list(level_names())
    discs = [f"{a}-{b}" for a, b in zip(levels[:-1], levels[1:])]
    for i, spec in enumerate(summary.plots):
        path = f"summary.plots[{i}]"
        shown = [k for k in (spec.x, spec.hue, spec.facet) if k]
        near = difflib.get_close_matches(spec.metric, METRIC_NAMES, n=1, cutoff=0.8)
        if spec.metric not in METRIC_NAMES and near:
            _fail(source, f"{path}.metric", f"= {spec.metric!r} is not a metric; did you mean {near[0]!r}? (metrics: "
                  "docs/loads.md)")
        if spec.region not in regions:
            _fail(source, f"{path}.region", f"= {spec.region!r} is not a region; allowed one of {', '.join(regions)}")
        if spec.relation not in _RELATIONS and spec.relation not in levels and spec.relation not in discs:
            _fail(source, f"{path}.relation", f"= {spec.relation!r} is not allowed; allowed one of "
                  f"{', '.join(_RELATIONS)} or a vertebra or disc name (e.g. 'L1', 'L1-L2')")
        if spec.x not in swept:
            _fail(source, f"{path}.x", f"= {spec.x!r} is not a swept key; allowed one of {swept}")
        for k in ("hue", "facet"):
            v = getattr(spec, k)
            if (v or k == "hue") and v != "variant" and v not in swept:
                _fail(source, f"{path}.{k}", f"= {v!r} is neither 'variant' nor a swept key; allowed one of "
                      f"{['variant'] + swept}")
        if len(shown) != len(set(shown)):
            _fail(source, path, f"puts {spec.x!r} on two axes (x, hue, facet must differ)")
        hidden = [k for k in swept if sizes[k] > 1 and k not in shown]
        drawn = [v.name for v in variants if not (spec.y != "value" and v.name == summary.reference)]
        if len(drawn) > 1 and "variant" not in shown:
            hidden.insert(0, "variant")
        if hidden:
            _fail(source, path, f"would average over {', '.join(hidden)} (swept, but on no axis); allowed: put "
                  f"it on hue or facet (e.g. facet = {hidden[0]!r}), or make it one of the plot's x, hue, facet")


def _parse_summary(source, raw, variant_names):
    if not isinstance(raw, dict):
        _fail(source, "[summary]", f"= {fmt_value(raw)}; expected a table")
    for k in raw:
        if k not in ("reference", "plots"):
            _fail(source, f"summary.{k}", "is not a known key; allowed: reference, plots")
    ref = raw.get("reference")
    if ref is not None and ref not in variant_names:
        _fail(source, "summary.reference", f"= {fmt_value(ref)} is not a variant; allowed: {variant_names}")
    plots = []
    for i, p in enumerate(raw.get("plots", [])):
        path = f"summary.plots[{i}]"
        if not isinstance(p, dict):
            _fail(source, path, "must be a table ([[summary.plots]])")
        for k in p:
            if k not in _PLOT_FIELDS:
                _fail(source, f"{path}.{k}", f"is not a known key; allowed: {', '.join(sorted(_PLOT_FIELDS))}")
        for k in ("metric", "x"):
            if k not in p:
                _fail(source, f"{path}.{k}", "is missing; required")
        for k, v in p.items():
            if v is not None and not isinstance(v, str):
                _fail(source, f"{path}.{k}", f"= {fmt_value(v)} is {type_name(v)}; expected a string")
        if p.get("y", "ratio") not in _Y:
            _fail(source, f"{path}.y", f"= {fmt_value(p['y'])} is not allowed; allowed {list(_Y)}")
        if p.get("y", "ratio") != "value" and ref is None:
            _fail(source, f"{path}.y", "= 'ratio' needs summary.reference (a variant); or set y = \"value\"")
        spec = PlotSpec(**p)
        if spec.name:
            check_name(spec.name, f"{source}: {path}.name")
        else:
            spec = dataclasses.replace(spec, name=safe_name(f"{spec.metric}_{spec.region}_{spec.relation}_vs_"
                                                            f"{spec.x.split('.')[-1]}"))
        plots.append(spec)
    return SummarySpec(ref, tuple(plots))


