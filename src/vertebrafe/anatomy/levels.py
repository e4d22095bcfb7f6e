"""Per-level dimensions of the vertebral bodies T10-L5 and the discs T10-T11 ... L5-S1.

The default values are the recommended adult set (sexes pooled, healthy reference) of the project's
reference file ``reference/levels.md`` section 5. Every value carries a source key:

* a publication key (``"B24"``, ``"P91"``, ``"CB21"``, ``"SR22"``) -- read in that source (rounded);
* ``"derived"`` -- arithmetic on sourced values by the rules below;
* ``"interpolated"`` -- a gap filled between levels;
* ``"memory"`` -- recollection of published data, not verified in a stored source.

:data:`SOURCES` explains the keys. Lengths in mm, angles in degrees.

Rules of the default set (so that overrides stay consistent):

* vertebral wedge (+ lordotic: anterior height larger) = ``atan((Ha - Hp) / D)`` with ``D`` the mean of
  the superior and inferior endplate depths -- computed from the heights, not stored;
* central (middle) body height = ``(Ha + Hp) / 2 - (superior + inferior concavity)``;
* segmental angle (+ lordosis) = vertebral wedge of the upper vertebra + disc wedge; the disc wedge is
  therefore derived from the segmental angle and the actual upper vertebra;
* disc rim height = mean of the anterior and posterior disc heights at the endplate rims; the central disc
  height is the rim height plus the concavities of the two adjacent endplates.

Use :func:`level_dimensions` to get one level (with overrides and a global scale) and
:func:`level_order`, :func:`vertebra_names`, :func:`disc_names`, :func:`adjacent_discs`,
:func:`segment_names` for the anatomical order.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import InputError

__all__ = [
    "SOURCES", "VERTEBRA_TABLE", "DISC_TABLE", "VERTEBRA_FIELDS", "DISC_FIELDS", "VERTEBRA_RANGES",
    "DISC_RANGES", "DISC_REFERENCE", "replace", "VertebraDimensions", "DiscDimensions", "level_dimensions", "level_order",
    "vertebra_names", "disc_names", "adjacent_discs", "segment_names", "disc_between",
]

SOURCES = MappingProxyType({
    "P91": "Panjabi et al. 1991, Spine 16:888 (thoracic; 12 cadaveric spines; EPW from Fig. 4A)",
    "B24": "Bonczar et al. 2024, Surg Radiol Anat (meta-analysis, 18 studies, n = 1481, pooled mean)",
    "CB21": "Cook & Baker 2021, IJSS 15:1072 (L5, CT of 196 patients)",
    "SR22": "Sci Rep 2022, doi 10.1038/s41598-022-21840-x, Table 2 (standing segmental angles, n = 324)",
    "derived": "arithmetic on sourced values (rules in reference/levels.md section 5)",
    "interpolated": "gap filled between levels (reference/levels.md section 5)",
    "memory": "recollection of published data, not verified in a stored source",
    "assumption": "modelling choice without a direct source",
})

# Short marks of the reference table -> source keys (a tick names its publication explicitly below).
_MARK = {"d": "derived", "i": "interpolated", "m": "memory"}

# Vertebral bodies, reference/levels.md section 5. (value, mark); marks: d/i/m or a source key.
# Fields: superior_width (EPWu), superior_depth (EPDu), inferior_width (EPWl), inferior_depth (EPDl),
# anterior_height (Ha), posterior_height (Hp), superior_concavity, inferior_concavity.
_V = {
    "T10": ((33.0, "i"), (27.5, "m"), (37.0, "d"), (28.5, "m"), (21.9, "d"), (23.6, "d"), (0.4, "i"), (0.8, "i")),
    "T11": ((36.0, "i"), (29.0, "m"), (40.2, "d"), (30.0, "m"), (22.2, "d"), (24.5, "d"), (0.5, "i"), (1.0, "i")),
    "T12": ((39.2, "P91"), (30.5, "m"), (42.3, "P91"), (31.5, "m"), (23.1, "d"), (25.4, "d"), (0.6, "i"), (1.2, "i")),
    "L1": ((41.1, "B24"), (31.5, "i"), (44.0, "d"), (32.5, "i"), (24.7, "d"), (26.6, "B24"), (0.7, "d"), (1.4, "i")),
    "L2": ((43.0, "B24"), (32.5, "i"), (45.8, "d"), (33.5, "i"), (26.0, "d"), (27.0, "B24"), (0.7, "d"), (1.5, "d")),
    "L3": ((44.8, "B24"), (33.5, "i"), (48.5, "d"), (34.3, "i"), (26.7, "d"), (26.7, "B24"), (0.7, "d"), (1.5, "d")),
    "L4": ((47.5, "B24"), (34.5, "i"), (49.8, "d"), (35.0, "i"), (27.0, "d"), (25.8, "B24"), (0.8, "i"), (1.5, "d")),
    "L5": ((48.8, "B24"), (35.7, "CB21"), (49.5, "m"), (35.3, "CB21"), (27.8, "d"), (24.1, "B24"), (0.9, "i"),
           (1.5, "d")),
}
VERTEBRA_FIELDS = ("superior_width", "superior_depth", "inferior_width", "inferior_depth",
                   "anterior_height", "posterior_height", "superior_concavity", "inferior_concavity")

# Discs, reference/levels.md section 5. Fields: segmental_angle (+ lordosis, deg), rim_height (mean of
# anterior and posterior rim heights, mm), nucleus_fraction (nucleus / disc cross-section area),
# nucleus_offset (posterior shift of the nucleus centroid as a fraction of the disc depth).
_D = {
    "T10-T11": ((-4.0, "m"), (5.2, "d"), (0.35, "m"), (0.025, "assumption")),
    "T11-T12": ((-3.0, "m"), (5.6, "d"), (0.37, "i"), (0.025, "assumption")),
    "T12-L1": ((-1.0, "m"), (6.1, "d"), (0.38, "i"), (0.025, "assumption")),
    "L1-L2": ((1.2, "SR22"), (6.9, "d"), (0.40, "i"), (0.025, "assumption")),
    "L2-L3": ((5.9, "SR22"), (7.8, "d"), (0.40, "i"), (0.025, "assumption")),
    "L3-L4": ((9.1, "SR22"), (8.7, "d"), (0.41, "i"), (0.025, "assumption")),
    "L4-L5": ((12.7, "SR22"), (9.1, "d"), (0.41, "d"), (0.025, "d")),
    "L5-S1": ((21.6, "SR22"), (9.2, "d"), (0.45, "d"), (0.0, "d")),
}
DISC_FIELDS = ("segmental_angle", "rim_height", "nucleus_fraction", "nucleus_offset")

# Informational values of the reference table that the geometry derives itself (not used as inputs).
DISC_REFERENCE = MappingProxyType({
    # disc: (disc wedge deg, central height, anterior height, posterior height, AP depth), all "derived"
    "T10-T11": (-0.5, 6.5, 5.1, 5.3, 28.8), "T11-T12": (1.4, 7.2, 6.0, 5.2, 30.2),
    "T12-L1": (3.2, 8.0, 7.0, 5.2, 31.5), "L1-L2": (4.6, 9.0, 8.2, 5.6, 32.5),
    "L2-L3": (7.6, 10.0, 10.0, 5.6, 33.5), "L3-L4": (9.1, 11.0, 11.5, 5.9, 34.4),
    "L4-L5": (10.7, 11.5, 12.4, 5.8, 35.4), "L5-S1": (15.6, 11.0, 14.1, 4.3, 35.1),
})


def _table(raw, fields):
    out = {}
    for name, row in raw.items():
        out[name] = MappingProxyType({f: (float(v), _MARK.get(k, k)) for f, (v, k) in zip(fields, row)})
    return MappingProxyType(out)


#: ``{level: {field: (value, source_key)}}`` for the vertebral bodies T10-L5.
VERTEBRA_TABLE = _table(_V, VERTEBRA_FIELDS)
#: ``{disc: {field: (value, source_key)}}`` for the discs T10-T11 ... L5-S1.
DISC_TABLE = _table(_D, DISC_FIELDS)

#: Allowed ranges ``(low, high)`` (inclusive) of each field, after scaling.
VERTEBRA_RANGES = MappingProxyType({
    "superior_width": (10.0, 90.0), "superior_depth": (10.0, 70.0),
    "inferior_width": (10.0, 90.0), "inferior_depth": (10.0, 70.0),
    "anterior_height": (5.0, 60.0), "posterior_height": (5.0, 60.0),
    "superior_concavity": (0.0, 6.0), "inferior_concavity": (0.0, 6.0),
})
DISC_RANGES = MappingProxyType({
    "segmental_angle": (-30.0, 35.0), "rim_height": (0.5, 25.0),
    "nucleus_fraction": (0.05, 0.8), "nucleus_offset": (-0.2, 0.2),
})
_LENGTHS = {"superior_width", "superior_depth", "inferior_width", "inferior_depth", "anterior_height",
            "posterior_height", "superior_concavity", "inferior_concavity", "rim_height"}

_VERTEBRAE = tuple(_V)            # cranial -> caudal
_DISCS = tuple(_D)                # cranial -> caudal


class _ReadOnlySources:
    """Pickling for dimension records: the read-only ``sources`` mapping travels as a dict."""

    def __getstate__(self):
        return {**self.__dict__, "sources": dict(self.sources)}

    def __setstate__(self, state):
        self.__dict__.update({**state, "sources": MappingProxyType(dict(state["sources"]))})


@dataclass(frozen=True)
class VertebraDimensions(_ReadOnlySources):
    """Dimensions of one vertebral body (mm).

    ``superior_*`` is the cranial endplate, ``inferior_*`` the caudal one; width is mediolateral (x),
    depth anteroposterior (y, midsagittal), heights are along z at the anterior and posterior rims;
    concavities are the maximal depths of the endplate dips below the rim. ``sources`` maps each field to
    its source key (see :data:`SOURCES`; ``"override"`` for a user value).
    """

    name: str
    superior_width: float
    superior_depth: float
    inferior_width: float
    inferior_depth: float
    anterior_height: float
    posterior_height: float
    superior_concavity: float
    inferior_concavity: float
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)

    @property
    def mean_depth(self):
        """Mean of the superior and inferior endplate depths (mm)."""
        return 0.5 * (self.superior_depth + self.inferior_depth)

    @property
    def rim_height(self):
        """Mean of the anterior and posterior heights (mm) = height at mid-depth between the rims."""
        return 0.5 * (self.anterior_height + self.posterior_height)

    @property
    def wedge(self):
        """Vertebral wedge angle (deg), + lordotic (anterior height larger): atan((Ha - Hp) / D)."""
        return math.degrees(math.atan((self.anterior_height - self.posterior_height) / self.mean_depth))

    @property
    def central_height(self):
        """Central body height (mm): rim height minus both endplate concavities."""
        return self.rim_height - self.superior_concavity - self.inferior_concavity

    def as_dict(self):
        return {f: getattr(self, f) for f in VERTEBRA_FIELDS}


@dataclass(frozen=True)
class DiscDimensions(_ReadOnlySources):
    """Dimensions of one intervertebral disc.

    ``segmental_angle`` (deg, + lordosis) is the angle between the superior endplates of the upper and the
    lower vertebra; ``rim_height`` (mm) the mean of the anterior and posterior heights at the endplate
    rims; ``nucleus_fraction`` the nucleus share of the disc cross-section area; ``nucleus_offset`` the
    posterior shift of the nucleus centroid as a fraction of the disc depth.
    """

    name: str
    segmental_angle: float
    rim_height: float
    nucleus_fraction: float
    nucleus_offset: float
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)

    @property
    def upper(self):
        return self.name.split("-")[0]

    @property
    def lower(self):
        return self.name.split("-")[1]

    def wedge(self, upper):
        """Disc wedge angle (deg, + lordotic) = segmental angle - wedge of the ``upper`` vertebra."""
        return self.segmental_angle - upper.wedge

    def as_dict(self):
        return {f: getattr(self, f) for f in DISC_FIELDS}


def vertebra_names():
    """Vertebral levels in anatomical order, cranial first: ``('T10', ..., 'L5')``."""
    return _VERTEBRAE


def disc_names():
    """Discs in anatomical order, cranial first: ``('T10-T11', ..., 'L5-S1')``."""
    return _DISCS


def _level_index(name):
    if name not in _VERTEBRAE:
        raise InputError(f"level = {name!r} is not a known vertebra; allowed: {list(_VERTEBRAE)}")
    return _VERTEBRAE.index(name)


def level_order(levels):
    """Sort vertebra names cranial -> caudal and check that they are consecutive.

    ``levels`` is a sequence of names or a range string ``"T12-L2"`` (inclusive, either order).
    Returns a tuple of names, cranial first. Raises :class:`InputError` for unknown, repeated or
    non-consecutive levels.
    """
    if isinstance(levels, str):
        parts = levels.replace(" ", "").split("-")
        if len(parts) == 1:
            names = [parts[0]]
        elif len(parts) == 2:
            i, j = sorted((_level_index(parts[0]), _level_index(parts[1])))
            names = list(_VERTEBRAE[i:j + 1])
        else:
            raise InputError(f"levels = {levels!r}; expected a name like 'L1' or a range like 'T12-L2'")
    else:
        names = [str(n) for n in levels]
    if not names:
        raise InputError("levels is empty; give at least one vertebra, e.g. ['L1']")
    idx = sorted(_level_index(n) for n in names)
    if len(set(idx)) != len(idx):
        raise InputError(f"levels = {list(names)} repeats a level; each vertebra may appear once")
    if idx[-1] - idx[0] != len(idx) - 1:
        raise InputError(f"levels = {list(names)} are not consecutive; allowed: a contiguous run of "
                         f"{list(_VERTEBRAE)}")
    return tuple(_VERTEBRAE[i] for i in idx)


def disc_between(upper, lower):
    """Name of the disc between two adjacent vertebrae, e.g. ``disc_between('L1', 'L2') == 'L1-L2'``."""
    return f"{upper}-{lower}"


def adjacent_discs(level):
    """``(disc above, disc below)`` of a vertebra; names follow the table (``'T9-T10'`` and ``'L5-S1'``
    included). The disc above T10 is not in the table; its values default to those of T10-T11."""
    i = _level_index(level)
    above = f"{_VERTEBRAE[i - 1]}-{level}" if i > 0 else f"T9-{level}"
    below = f"{level}-{_VERTEBRAE[i + 1]}" if i + 1 < len(_VERTEBRAE) else f"{level}-S1"
    return above, below


def segment_names(levels):
    """Vertebrae and discs of a segment, cranial first: ``('T12', 'T12-L1', 'L1', 'L1-L2', 'L2')``."""
    order = level_order(levels)
    out = [order[0]]
    for up, lo in zip(order[:-1], order[1:]):
        out += [disc_between(up, lo), lo]
    return tuple(out)


def _check_value(key, value, ranges, name):
    low, high = ranges[key]
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}.{key} = {value!r} is not a number; allowed range [{low}, {high}]") from None
    if not math.isfinite(v) or not (low <= v <= high):
        raise InputError(f"{name}.{key} = {value!r} is out of range; allowed [{low}, {high}]")
    return v


def level_dimensions(name, scale=1.0, **overrides):
    """Dimensions of one vertebra (``'L1'``) or disc (``'L1-L2'``) from the default table.

    Parameters
    ----------
    name : str
        A vertebra T10-L5 or a disc T10-T11 ... L5-S1 (``'T9-T10'`` falls back to the T10-T11 values).
    scale : float
        Global factor on every length (widths, depths, heights, concavities, disc rim height); angles and
        fractions are unchanged. Allowed range (0.5, 2.0).
    **overrides
        Field values (mm, deg or fraction, *after* scaling) that replace the table values, e.g.
        ``anterior_height=20.0``. Their source becomes ``"override"``.

    Returns
    -------
    VertebraDimensions or DiscDimensions

    Raises
    ------
    InputError
        Unknown name or field, a value out of its range (:data:`VERTEBRA_RANGES`, :data:`DISC_RANGES`),
        or a concavity that would leave less than a third of the rim height.
    """
    name = str(name)
    s = float(scale) if isinstance(scale, (int, float)) else scale
    if not isinstance(s, float) or not (0.5 < s < 2.0):
        raise InputError(f"scale = {scale!r} is out of range; allowed (0.5, 2.0)")
    if name in VERTEBRA_TABLE:
        table, fields, ranges, cls = VERTEBRA_TABLE[name], VERTEBRA_FIELDS, VERTEBRA_RANGES, VertebraDimensions
    else:
        key = "T10-T11" if name == "T9-T10" else name
        if key not in DISC_TABLE:
            raise InputError(f"name = {name!r} is not a known vertebra or disc; allowed: "
                             f"{list(_VERTEBRAE) + list(_DISCS)}")
        table, fields, ranges, cls = DISC_TABLE[key], DISC_FIELDS, DISC_RANGES, DiscDimensions
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise InputError(f"override {unknown[0]!r} = {overrides[unknown[0]]!r} is not a field of {name}; "
                         f"allowed: {list(fields)}")
    values, sources = {}, {}
    for f in fields:
        v, src = table[f]
        if f in _LENGTHS:
            v *= s
        if f in overrides:
            v, src = overrides[f], "override"
        values[f] = _check_value(f, v, ranges, name)
        sources[f] = src if (f not in _LENGTHS or s == 1.0 or src == "override") else f"{src} x scale {s:g}"
    if cls is VertebraDimensions:
        rim = 0.5 * (values["anterior_height"] + values["posterior_height"])
        conc = values["superior_concavity"] + values["inferior_concavity"]
        if conc > 2.0 * rim / 3.0:
            raise InputError(f"{name}: superior_concavity + inferior_concavity = {conc:g} mm leaves too little "
                             f"bone; allowed <= 2/3 of the rim height ({2 * rim / 3:.3g} mm)")
    return cls(name=name, sources=MappingProxyType(sources), **values)


def replace(dims, **changes):
    """A copy of a dimensions record with ``changes`` applied and validated (source ``"override"``)."""
    ranges = VERTEBRA_RANGES if isinstance(dims, VertebraDimensions) else DISC_RANGES
    fields = VERTEBRA_FIELDS if isinstance(dims, VertebraDimensions) else DISC_FIELDS
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise InputError(f"override {unknown[0]!r} is not a field of {dims.name}; allowed: {list(fields)}")
    checked = {k: _check_value(k, v, ranges, dims.name) for k, v in changes.items()}
    sources = dict(dims.sources)
    sources.update({k: "override" for k in checked})
    return dataclasses.replace(dims, sources=MappingProxyType(sources), **checked)
