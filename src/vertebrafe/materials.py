"""Materials for vertebral models: bone density, density-modulus laws, named materials, per-cell elasticity.

Units: modulus MPa, QCT trabecular volumetric bone mineral density (vBMD) in mg/cm^3, ash and apparent
density in g/cm^3, strains dimensionless (0.0077 = 0.77 %). Elasticity matrices are ``(..., 6, 6)`` in
Voigt order xx, yy, zz, xy, yz, xz with engineering shear strains (see :mod:`vertebrafe.elasticity`);
the axis of transverse isotropy of cancellous bone is z (superior).

Conversion chain (all factors are parameters; defaults reproduce the reference illustration)::

    vBMD (mg/cm^3) --[rho_ash = ash_per_qct * vBMD / 1000]--> rho_ash (g/cm^3)
                   --[rho_app = rho_ash / ash_fraction]------> rho_app (g/cm^3)
                   --[E = a * rho_app ** b  (law)]-----------> E (MPa)

Every constant carries its source and a status: ``"verified"`` (read in the cited source or its abstract),
``"memory"`` (quoted from secondary knowledge, not re-checked), ``"derived"`` (arithmetic on the others) or
``"assumption"`` (a modelling choice of this package). :meth:`MaterialSet.describe` lists every value
that a model uses, so that no choice is hidden.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError, MaterialError
from . import elasticity as _el

__all__ = [
    "Constant", "CONSTANTS", "DensityModulusLaw", "LAWS", "Material", "MATERIALS", "MaterialSet", "LevelMaterials",
    "ash_density", "apparent_density", "bmd_from_apparent_density", "bone_volume_fraction",
    "cancellous_modulus", "cancellous_elasticity", "shear_modulus_axial", "composite_modulus", "mix",
    "compacted_bone_modulus", "bmd_category", "cortical_modulus", "t_score", "bmd_from_t_score", "density_table",
    "BMD_RANGE", "REGIONS", "FIBRE_FREE_ANNULUS", "GROUND_SUBSTANCE", "PHASE_TISSUES",
    "PHASE_STRESS",
]

# --------------------------------------------------------------------------------------------------
# Documented constants


@dataclass(frozen=True)
class Constant:
    """A documented scalar: ``value`` in ``unit``, with its ``source`` and ``status``
    (``"verified"``, ``"memory"``, ``"derived"`` or ``"assumption"``)."""

    name: str
    value: float
    unit: str
    source: str
    status: str
    note: str = ""


CONSTANTS: dict[str, Constant] = {c.name: c for c in (
    Constant("ash_per_qct", 1.0, "(g/cm^3 ash) / (g/cm^3 QCT)",
             "literature.md 2.1 illustration (rho_ash ~ rho_QCT); calibration-phantom dependent "
             "(Goodsitt 1992: K2HPO4/HA 0.81-1.02; review s40634-016-0072-2)", "assumption",
             "rho_ash = ash_per_qct * vBMD / 1000"),
    Constant("ash_fraction", 0.6, "-", "Keyak; Schileo (rho_ash / rho_app ~ 0.6)", "memory",
             "rho_app = rho_ash / ash_fraction"),
    Constant("tissue_density", 2.0, "g/cm^3",
             "typical wet density of bone tissue (~1.9-2.1 g/cm^3)", "assumption",
             "bone volume fraction BV/TV = rho_app / tissue_density"),
    Constant("bmd_normal_threshold", 120.0, "mg/cm^3", "ACR-type QCT guideline (PMC7495321 Table 2)",
             "verified", "normal > 120; 80 <= low <= 120"),
    Constant("bmd_osteoporosis_threshold", 80.0, "mg/cm^3", "ACR-type QCT guideline (PMC7495321 Table 2)",
             "verified", "osteoporosis < 80"),
    Constant("young_mean", 170.0, "mg/cm^3",
             "typical young-adult (20-35 y) lumbar trabecular QCT vBMD; no published mean/SD found in the "
             "stored literature", "assumption",
             "T-scores are not recommended for spine QCT diagnosis; use bmd_category"),
    Constant("young_sd", 30.0, "mg/cm^3", "as young_mean", "assumption", ""),
    Constant("transverse_ratio", 0.42, "-", "IJSS FE table: 1987/4730 (alternative 1357/4730 = 0.29)",
             "derived", "E_transverse / E_axial of cancellous bone"),
    Constant("cancellous_nu", 0.2, "-", "IJSS FE table (nu = 0.2)", "verified", ""),
    Constant("yield_strain_compression", 0.0077, "-",
             "Morgan & Keaveny 2001, J Biomech 34:569 (vertebra)", "memory", "0.77 %"),
    Constant("yield_strain_tension", 0.0070, "-",
             "Morgan & Keaveny 2001, J Biomech 34:569 (vertebra)", "memory", "0.70 %"),
    Constant("cement_strength", 70.0, "MPa", "ISO 5833 (acrylic bone cement): minimum compressive strength",
             "memory", "yield stress of cement and cement-bone composite in the strength estimates"),
    Constant("composite_E0", 2400.0, "MPa", "Williams & Johnson 1989, J Biomech (static, BV/TV = 0)",
             "verified", "PMMA-cancellous composite, bovine tibia"),
    Constant("composite_E25", 4400.0, "MPa", "Williams & Johnson 1989, J Biomech (static, BV/TV = 0.25)",
             "verified", ""),
    Constant("cortical_E_normal", 12000.0, "MPa",
             "PMC12452785 Table 3 (normal); IJSS FE table; BMC MSD 2017", "verified",
             "cortical shell modulus at vBMD >= 120 mg/cm^3 (QCT normal)"),
    Constant("cortical_E_osteoporotic", 4700.0, "MPa", "PMC12452785 Table 3 (osteoporosis)", "verified",
             "cortical shell modulus at vBMD <= 80 mg/cm^3 (QCT osteoporosis); the same table gives 8350 MPa "
             "for osteopenia, the mean of the linear ramp over 80-120 mg/cm^3"),
    Constant("compacted_factor", 2.0, "-",
             "no published value; Purcell 2013 shows +/-28-40 % stress sensitivity to the compacted "
             "layer's modulus and thickness", "assumption",
             "E_compacted = factor * E_cancellous; vary it in a sensitivity study"),
)}

BMD_RANGE = (0.0, 400.0)          # mg/cm^3, (low exclusive, high inclusive)
_RHO_APP_RANGE = (0.0, 1.0)       # g/cm^3, (exclusive, inclusive): trabecular apparent density


def _c(name):
    return CONSTANTS[name].value


#: Yield strains (-) of vertebral trabecular bone in compression and tension (Morgan & Keaveny 2001), the
#: defaults of :class:`MaterialSet`, :func:`vertebrafe.simulate` and :mod:`vertebrafe.post`.
YIELD_STRAIN_COMPRESSION = _c("yield_strain_compression")
YIELD_STRAIN_TENSION = _c("yield_strain_tension")
#: Yield stress (MPa) of cement and cement-bone composite: the ISO 5833 minimum compressive strength of
#: acrylic bone cement (:mod:`vertebrafe.post.pushover`, :mod:`vertebrafe.clinical.firstyield`).
CEMENT_STRENGTH = _c("cement_strength")
#: Tissues of the columns of the cell field ``phase_yield_factor`` of the cells a cement or rim surface cuts
#: (written by :mod:`vertebrafe.clinical.firstyield`, read by :mod:`vertebrafe.post.metrics`); ``cement`` is
#: the vertebra's cement tissue (PMMA or cement-bone composite) with its interface layer.
PHASE_TISSUES = ("cancellous", "compacted_bone", "cement")
#: Key of the operation data (``Operation.data``) of a vertebroplasty or kyphoplasty that holds, per cut cell
#: and tissue of :data:`PHASE_TISSUES`, the map from the cell's strain to that tissue's own stress (written by
#: :mod:`vertebrafe.clinical.phasestress`, read by :mod:`vertebrafe.post.metrics`).
PHASE_STRESS = "phase_stress"


# --------------------------------------------------------------------------------------------------
# Input checks


def _check_range(field_name, value, low, high, unit="", low_open=True, high_open=False, cls=InputError):
    """Return ``value`` as float64 array; raise ``cls`` naming the field, the value and the range."""
    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr)
    bad |= (arr <= low) if low_open else (arr < low)
    bad |= (arr >= high) if high_open else (arr > high)
    if np.any(bad):
        flat = np.atleast_1d(arr)
        i = int(np.flatnonzero(np.atleast_1d(bad))[0])
        where = "" if arr.ndim == 0 else f" at index {i} ({int(np.count_nonzero(bad))} value(s) invalid)"
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        u = f" {unit}" if unit else ""
        raise cls(f"{field_name} = {float(flat[i])!r}{u}{where}; allowed range {lo}{low:g}, {high:g}{hi}{u}")
    return arr


def _check_bmd(bmd):
    return _check_range("bmd", bmd, *BMD_RANGE, unit="mg/cm^3")


def _check_positive(field_name, value, unit="", cls=InputError):
    return _check_range(field_name, value, 0.0, np.inf, unit=unit, high_open=True, cls=cls)


def _check_fraction(field_name, value):
    return _check_range(field_name, value, 0.0, 1.0, low_open=False, high_open=False)


def _out(arr):
    """Return a Python float for 0-d results, the array otherwise."""
    arr = np.asarray(arr, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


# --------------------------------------------------------------------------------------------------
# Density conversions


def ash_density(bmd, ash_per_qct=None):
    """Ash density (g/cm^3) from QCT trabecular vBMD ``bmd`` (mg/cm^3, scalar or array, 0 < bmd <= 400).

    ``rho_ash = ash_per_qct * bmd / 1000``; default ``ash_per_qct = 1.0`` [assumption: the ash density
    equals the phantom-equivalent mineral density; the true factor depends on the phantom material].
    """
    bmd = _check_bmd(bmd)
    k = _c("ash_per_qct") if ash_per_qct is None else float(_check_positive("ash_per_qct", ash_per_qct))
    return _out(k * bmd / 1000.0)


def apparent_density(bmd, ash_per_qct=None, ash_fraction=None):
    """Apparent (wet) density (g/cm^3) from QCT vBMD ``bmd`` (mg/cm^3, scalar or array).

    ``rho_app = ash_density(bmd) / ash_fraction``; default ``ash_fraction = 0.6`` [memory: Keyak,
    Schileo]. Defaults give vBMD 80 -> 0.133 and 120 -> 0.200 g/cm^3.
    """
    f = _c("ash_fraction") if ash_fraction is None else float(
        _check_range("ash_fraction", ash_fraction, 0.0, 1.0))
    return _out(np.asarray(ash_density(bmd, ash_per_qct)) / f)


def bmd_from_apparent_density(rho_app, ash_per_qct=None, ash_fraction=None):
    """Inverse of :func:`apparent_density`: QCT vBMD (mg/cm^3) from apparent density (g/cm^3)."""
    rho = _check_range("apparent_density", rho_app, *_RHO_APP_RANGE, unit="g/cm^3")
    k = _c("ash_per_qct") if ash_per_qct is None else float(_check_positive("ash_per_qct", ash_per_qct))
    f = _c("ash_fraction") if ash_fraction is None else float(
        _check_range("ash_fraction", ash_fraction, 0.0, 1.0))
    return _out(rho * f * 1000.0 / k)


def bone_volume_fraction(rho_app, tissue_density=None):
    """Bone volume fraction BV/TV (-) from apparent density ``rho_app`` (g/cm^3).

    ``BV/TV = rho_app / tissue_density``, default tissue density 2.0 g/cm^3 [assumption].
    """
    rho = _check_range("apparent_density", rho_app, *_RHO_APP_RANGE, unit="g/cm^3")
    t = _c("tissue_density") if tissue_density is None else float(
        _check_positive("tissue_density", tissue_density, "g/cm^3"))
    bv = rho / t
    _check_fraction("bone volume fraction (rho_app / tissue_density)", bv)
    return _out(bv)


# --------------------------------------------------------------------------------------------------
# Density-modulus laws


@dataclass(frozen=True)
class DensityModulusLaw:
    """``E = offset + a * rho ** b`` (MPa), ``rho`` in g/cm^3 of the kind ``density``.

    ``density`` is ``"apparent"`` (wet apparent density) or ``"qct"`` (phantom-equivalent mineral density
    rho_QCT = vBMD / 1000). ``valid_range`` is the density range (g/cm^3) of the specimens behind the fit;
    ``status`` marks the coefficients ``"verified"`` or ``"memory"``.
    """

    name: str
    a: float
    b: float
    offset: float
    density: str
    site: str
    source: str
    status: str
    valid_range: tuple[float, float]
    valid_range_source: str
    note: str = ""

    def __call__(self, rho):
        """Modulus (MPa) for density ``rho`` (g/cm^3, scalar or array); raises MaterialError if E <= 0."""
        rho = np.asarray(rho, dtype=np.float64)
        E = self.offset + self.a * rho ** self.b
        if np.any(E <= 0):
            i = int(np.flatnonzero(np.atleast_1d(E <= 0))[0])
            r = float(np.atleast_1d(rho)[i])
            lo = (-self.offset / self.a) ** (1.0 / self.b) if self.offset < 0 else 0.0
            raise MaterialError(f"law {self.name!r} gives E = {float(np.atleast_1d(E)[i]):.4g} MPa <= 0 at "
                                f"{self.density} density {r:.4g} g/cm^3; it needs density > {lo:.4g} g/cm^3")
        return _out(E)

    def in_range(self, rho):
        """Boolean (array): density inside :attr:`valid_range` (inclusive)."""
        rho = np.asarray(rho, dtype=np.float64)
        return (rho >= self.valid_range[0]) & (rho <= self.valid_range[1])

    def formula(self):
        rho = "rho_app" if self.density == "apparent" else "rho_QCT"
        if self.offset:
            return f"E = {self.offset:g} + {self.a:g} {rho}" + ("" if self.b == 1 else f"^{self.b:g}")
        return f"E = {self.a:g} {rho}^{self.b:g}"


_MORGAN = "Morgan, Bayraktar, Keaveny 2003, J Biomech 36(7):897-904, on-axis compression"
_MORGAN_RANGE = "Morgan 2003 specimen ranges"
LAWS: dict[str, DensityModulusLaw] = {law.name: law for law in (
    DensityModulusLaw("morgan2003_vertebra", 4730.0, 1.56, 0.0, "apparent", "vertebra (T10-L5)", _MORGAN,
                      "verified", (0.09, 0.35),
                      "Ohman-Magi 2021 review: reported vertebral wet apparent density 0.09-0.35 g/cm^3",
                      "25 cadavers, 61 specimens, r^2 0.73"),
    DensityModulusLaw("morgan2003_tibia", 15490.0, 1.93, 0.0, "apparent", "proximal tibia", _MORGAN,
                      "verified", (0.09, 0.41), _MORGAN_RANGE + " [memory]", "16 cadavers, 31 specimens, r^2 0.84"),
    DensityModulusLaw("morgan2003_trochanter", 15010.0, 2.18, 0.0, "apparent", "greater trochanter", _MORGAN,
                      "verified", (0.14, 0.28), _MORGAN_RANGE + " [memory]", "21 cadavers, 23 specimens, r^2 0.82"),
    DensityModulusLaw("morgan2003_femoral_neck", 6850.0, 1.49, 0.0, "apparent", "femoral neck", _MORGAN,
                      "verified", (0.26, 0.75), _MORGAN_RANGE + " [memory]", "23 cadavers, 27 specimens, r^2 0.85"),
    DensityModulusLaw("kopperdahl2002", 3230.0, 1.0, -34.7, "qct", "vertebral trabecular bone",
                      "Kopperdahl, Morgan, Keaveny 2002, J Orthop Res 20:801-805", "memory", (0.06, 0.25),
                      "assumption (typical vertebral QCT range; E > 0 needs rho_QCT > 0.0107 g/cm^3)",
                      "rho_QCT in g/cm^3 K2HPO4-equivalent"),
)}
# "morgan2003_pooled" is deliberately absent: the pooled fit is not in the project's reference table.


def _law(law):
    if isinstance(law, DensityModulusLaw):
        return law
    try:
        return LAWS[law]
    except (KeyError, TypeError):
        raise InputError(f"law = {law!r} is not a known density-modulus law; known: {sorted(LAWS)}") from None


def cancellous_modulus(bmd=None, *, apparent_density=None, law="morgan2003_vertebra", ash_per_qct=None,
                       ash_fraction=None, strict=False):
    """Axial (on-axis) cancellous modulus E (MPa) from QCT vBMD or apparent density.

    Give exactly one of ``bmd`` (mg/cm^3, 0 < bmd <= 400) or ``apparent_density`` (g/cm^3, 0 < rho <= 1),
    scalar or array. ``law`` is a key of :data:`LAWS` or a :class:`DensityModulusLaw`; the density is
    converted to the law's kind with ``ash_per_qct`` and ``ash_fraction`` (see :func:`apparent_density`).
    ``strict=True`` raises :class:`InputError` for densities outside the law's ``valid_range``;
    otherwise the law is extrapolated. Returns a float for scalar input, an array otherwise.
    """
    L = _law(law)
    k = _c("ash_per_qct") if ash_per_qct is None else float(_check_positive("ash_per_qct", ash_per_qct))
    f = _c("ash_fraction") if ash_fraction is None else float(
        _check_range("ash_fraction", ash_fraction, 0.0, 1.0))
    if (bmd is None) == (apparent_density is None):
        raise InputError("cancellous_modulus needs exactly one of bmd (mg/cm^3) or apparent_density (g/cm^3)")
    if bmd is not None:
        rho_qct = _check_bmd(bmd) / 1000.0
        rho_app = k * rho_qct / f
    else:
        rho_app = _check_range("apparent_density", apparent_density, *_RHO_APP_RANGE, unit="g/cm^3")
        rho_qct = rho_app * f / k
    rho = rho_app if L.density == "apparent" else rho_qct
    if strict and not np.all(L.in_range(rho)):
        bad = np.atleast_1d(rho)[~np.atleast_1d(L.in_range(rho))][0]
        raise InputError(f"{L.density} density = {bad:.4g} g/cm^3 is outside the validity range of law "
                         f"{L.name!r}: [{L.valid_range[0]:g}, {L.valid_range[1]:g}] g/cm^3")
    return L(rho)


# --------------------------------------------------------------------------------------------------
# Anisotropy


_SHEAR_RULES = ("geometric", "axial", "transverse")


def shear_modulus_axial(E_axial, transverse_ratio=None, nu=None, rule="geometric"):
    """Shear modulus G_axial (MPa) in planes containing the axis (xz, yz) of transversely isotropic bone.

    ``rule="geometric"`` (default): ``G = sqrt(E_axial E_transverse) / (2 (1 + nu))
    = E_axial sqrt(ratio) / (2 (1 + nu))`` — Huber's approximation for orthotropic solids [assumption for
    trabecular bone]; ``"axial"``: ``E_axial / (2 (1 + nu))``; ``"transverse"``: ``E_transverse / (2 (1 + nu))``.
    """
    ratio = _c("transverse_ratio") if transverse_ratio is None else transverse_ratio
    nu = _c("cancellous_nu") if nu is None else nu
    ratio = _check_range("transverse_ratio", ratio, 0.0, 1.0)
    E = _check_positive("E_axial", E_axial, "MPa", cls=MaterialError)
    nu = _check_range("nu", nu, -1.0, 0.5, high_open=True, cls=MaterialError)
    if rule == "geometric":
        G = E * np.sqrt(ratio) / (2 * (1 + nu))
    elif rule == "axial":
        G = E / (2 * (1 + nu))
    elif rule == "transverse":
        G = E * ratio / (2 * (1 + nu))
    else:
        raise InputError(f"shear rule = {rule!r}; allowed: {list(_SHEAR_RULES)}")
    return _out(G)


def cancellous_elasticity(E_axial, transverse_ratio=None, nu=None, anisotropic=True, shear_rule="geometric"):
    """Cancellous elasticity ``(..., 6, 6)`` (MPa) from the axial modulus ``E_axial`` (MPa, scalar or array).

    ``anisotropic=False`` (or ratio 1 with the geometric rule) gives isotropic ``(E_axial, nu)``. Otherwise
    transversely isotropic about z: ``E_z = E_axial``, ``E_x = E_y = ratio * E_axial`` (default ratio 0.42,
    IJSS FE table), both Poisson ratios ``nu`` (default 0.2) and ``G_xz = G_yz`` from
    :func:`shear_modulus_axial`.
    """
    nu = _c("cancellous_nu") if nu is None else nu
    if not anisotropic:
        return _el.isotropic(E_axial, nu)
    ratio = _c("transverse_ratio") if transverse_ratio is None else transverse_ratio
    ratio = _check_range("transverse_ratio", ratio, 0.0, 1.0)
    E = _check_positive("E_axial", E_axial, "MPa", cls=MaterialError)
    G = shear_modulus_axial(E, ratio, nu, shear_rule)
    return _el.transversely_isotropic(E, ratio * E, nu, nu, G)


# --------------------------------------------------------------------------------------------------
# Named materials


@dataclass(frozen=True)
class Material:
    """An isotropic linear-elastic material with its source: ``E`` (MPa), ``nu`` (-)."""

    name: str
    E: float
    nu: float
    source: str
    note: str = ""
    status: str = "verified"

    def __post_init__(self):
        _check_positive(f"{self.name}.E", self.E, "MPa", cls=MaterialError)
        _check_range(f"{self.name}.nu", self.nu, -1.0, 0.5, high_open=True, cls=MaterialError)

    def elasticity(self, n=None):
        """``(6, 6)`` elasticity (MPa), or ``(n, 6, 6)`` copies when ``n`` is given."""
        C = _el.isotropic(self.E, self.nu)
        return C if n is None else np.broadcast_to(C, (int(n), 6, 6)).copy()

    def scaled(self, factor, name=None, note=None):
        """The same material with ``E * factor`` (``nu`` unchanged)."""
        _check_positive("factor", factor)
        return dataclasses.replace(self, name=name or f"{self.name}*{factor:g}", E=self.E * factor,
                                   note=note or f"{factor:g} x {self.name}")


_IJSS = "IJSS FE table (ijssurgery.com markup 5781)"
_JOSR20 = "J Orthop Surg Res 2020, s13018-020-01650-5, Table 1"
_BMRI13 = "Hindawi BMRI 2013, 705185, Table 1"
MATERIALS: dict[str, Material] = {m.name: m for m in (
    Material("cortical_shell", 12000.0, 0.3, _IJSS + "; BMC MSD 2017; J Orthop Surg Res 2021",
             "shell 0.35-0.4 mm thick"),
    Material("cortical_shell_osteoporotic", 8040.0, 0.3, _JOSR20, "67 % of normal"),
    Material("bony_endplate", 1000.0, 0.2, _IJSS, "shell 0.25 mm"),
    Material("endplate_graded_outer", 12000.0, 0.3, _BMRI13, "graded endplate, outer ring"),
    Material("endplate_graded_intermediate", 6000.0, 0.3, _BMRI13, "graded endplate, intermediate ring"),
    Material("endplate_graded_centre", 2000.0, 0.3, _BMRI13, "graded endplate, centre"),
    Material("cartilage_endplate", 24.0, 0.4, _IJSS, "alternatives 50 MPa (BMRI 2013), 10 MPa (JOSR 2021)"),
    Material("annulus_ground", 4.2, 0.45, _JOSR20 + "; " + _BMRI13,
             "the annulus of the fibre-free disc (MaterialSet.annulus): the ground-substance value of those "
             "fibre-reinforced models, used here without fibres"),
    Material("annulus_ground_ijss", 1.36, 0.45, _IJSS, "softer ground-substance alternative"),
    Material("annulus_matrix", 0.966, 0.452,
             "BMC MSD 2024, s12891-024-07754-x (PMC11321056) Table 1: Mooney-Rivlin C10 = 0.133, C01 = 0.0333, "
             "D = 0.6 MPa^-1, linearised (mu = 2 (C10 + C01), K = 2 / D)",
             "ground substance between the fibres of a fibre-reinforced annulus; the published value nearest "
             "the measured axial tensile modulus of human annulus, 0.8 +- 0.9 MPa (Elliott & Setton 2001): a "
             "choice calibrated on that dataset (docs/validation.md)"),
    Material("annulus_homogenised", 450.0, 0.3, "J Orthop Surg Res 2021, s13018-021-02237-4, Table 1",
             "isotropic fibre-reinforced annulus as tabulated (marked [sic] in the reference); an isotropic "
             "homogenisation stiffens the radial and axial directions too; for comparison only"),
    Material("nucleus", 1.0, 0.499, _JOSR20 + "; BMC MSD 2017; J Orthop Surg Res 2021",
             "nearly incompressible, the value of linear spine FE models: solve with the B-bar formulation"),
    Material("nucleus_04999", 1.0, 0.4999, "E: " + _JOSR20 + "; nu 0.4999 [memory]",
             "closer to incompressible: about 2.5 % more nucleus pressure, 4 % stiffer segment, 2.5-3 times "
             "the CG iterations", "memory"),
    Material("pmma", 3000.0, 0.4, _JOSR20, "FE convention; measured vertebroplasty PMMA 2000-2700 MPa "
             "(Jasper 2002)"),
    Material("pmma_kosmopoulos", 2160.0, 0.4, "Kosmopoulos (E); nu 0.4 as the FE convention",
             "measured-range alternative", "assumption"),
    Material("posterior_elements", 3500.0, 0.25, _JOSR20, "pedicles, laminae, processes"),
    Material("cancellous_generic_normal", 100.0, 0.2, "Hindawi JHE 2017, 9618940, Table 2",
             "generic FE convention; do not mix with density-based moduli"),
    Material("cancellous_generic_osteoporotic", 34.0, 0.2, _JOSR20, "34 % of normal; generic FE convention"),
)}


#: The annulus of the fibre-free disc (:attr:`MaterialSet.annulus`): isotropic, homogenised.
FIBRE_FREE_ANNULUS = "annulus_ground"
#: The ground substance between the collagen fibres of the fibre-reinforced annulus
#: (:attr:`MaterialSet.annulus_matrix`; the validated fibre disc, docs/validation.md).
GROUND_SUBSTANCE = "annulus_matrix"


def _material(value, field_name):
    if isinstance(value, Material):
        return value
    try:
        return MATERIALS[value]
    except (KeyError, TypeError):
        raise InputError(f"{field_name} = {value!r} is not a Material nor a known name; known: "
                         f"{sorted(MATERIALS)}") from None


# --------------------------------------------------------------------------------------------------
# Cement-bone composite and mixtures


def composite_modulus(bone_volume_fraction, E0=None, E25=None, extrapolate=False):
    """Modulus (MPa) of PMMA-infiltrated cancellous bone from the bone volume fraction BV/TV (-).

    Linear fit through the static data of Williams & Johnson 1989 (bovine tibia): ``E = E0 + (E25 - E0)
    * BV/TV / 0.25`` with E0 = 2400 MPa at BV/TV 0 and E25 = 4400 MPa at BV/TV 0.25 (slope 8000 MPa).
    BV/TV beyond 0.25 (up to 1) needs ``extrapolate=True``. Scalar or array input.
    """
    bv = _check_fraction("bone_volume_fraction", bone_volume_fraction)
    if not extrapolate:
        bv = _check_range("bone_volume_fraction", bv, 0.0, 0.25, low_open=False)
    e0 = _c("composite_E0") if E0 is None else float(_check_positive("E0", E0, "MPa"))
    e25 = _c("composite_E25") if E25 is None else float(_check_positive("E25", E25, "MPa"))
    return _out(e0 + (e25 - e0) * bv / 0.25)


def _bulk_shear(E, nu):
    return E / (3 * (1 - 2 * nu)), E / (2 * (1 + nu))


def _young_poisson(K, G):
    return 9 * K * G / (3 * K + G), (3 * K - 2 * G) / (2 * (3 * K + G))


def _hs_bounds(f1, K1, G1, f2, K2, G2):
    """Hashin-Shtrikman (Berryman form) lower and upper bounds of (K, G) for two isotropic phases."""
    def k_hs(Gm):
        return 1.0 / (f1 / (K1 + 4 * Gm / 3) + f2 / (K2 + 4 * Gm / 3)) - 4 * Gm / 3

    def g_hs(Km, Gm):
        zeta = Gm / 6 * (9 * Km + 8 * Gm) / (Km + 2 * Gm)
        return 1.0 / (f1 / (G1 + zeta) + f2 / (G2 + zeta)) - zeta

    Kmax, Kmin = np.maximum(K1, K2), np.minimum(K1, K2)
    Gmax, Gmin = np.maximum(G1, G2), np.minimum(G1, G2)
    return (k_hs(Gmin), g_hs(Kmin, Gmin)), (k_hs(Gmax), g_hs(Kmax, Gmax))


_MIX_RULES = ("voigt", "reuss", "hashin-shtrikman", "hs-lower", "hs-upper")


def mix(E1, nu1, E2, nu2, fraction, rule="voigt"):
    """Effective isotropic (E, nu) of two isotropic phases; ``fraction`` is the volume fraction of phase 2.

    Rules act on bulk and shear moduli: ``"voigt"`` (arithmetic, upper bound), ``"reuss"`` (harmonic,
    lower bound), ``"hs-lower"`` / ``"hs-upper"`` (Hashin-Shtrikman bounds) and ``"hashin-shtrikman"``
    (mean of the two HS bounds). All are exact at fractions 0 and 1 and satisfy
    Reuss <= HS-lower <= HS <= HS-upper <= Voigt for E. Inputs broadcast (scalars or arrays);
    used for partial-volume cement cells (phase 2 = cement). Returns ``(E, nu)`` in MPa and -.
    """
    if rule not in _MIX_RULES:
        raise InputError(f"rule = {rule!r}; allowed: {list(_MIX_RULES)}")
    f2 = _check_fraction("fraction", fraction)
    E1 = _check_positive("E1", E1, "MPa", cls=MaterialError)
    E2 = _check_positive("E2", E2, "MPa", cls=MaterialError)
    nu1 = _check_range("nu1", nu1, -1.0, 0.5, high_open=True, cls=MaterialError)
    nu2 = _check_range("nu2", nu2, -1.0, 0.5, high_open=True, cls=MaterialError)
    f1 = 1.0 - f2
    K1, G1 = _bulk_shear(E1, nu1)
    K2, G2 = _bulk_shear(E2, nu2)
    if rule == "voigt":
        K, G = f1 * K1 + f2 * K2, f1 * G1 + f2 * G2
    elif rule == "reuss":
        K, G = 1.0 / (f1 / K1 + f2 / K2), 1.0 / (f1 / G1 + f2 / G2)
    else:
        (Kl, Gl), (Ku, Gu) = _hs_bounds(f1, K1, G1, f2, K2, G2)
        if rule == "hs-lower":
            K, G = Kl, Gl
        elif rule == "hs-upper":
            K, G = Ku, Gu
        else:
            K, G = 0.5 * (Kl + Ku), 0.5 * (Gl + Gu)
    E, nu = _young_poisson(K, G)
    return _out(E), _out(nu)


def compacted_bone_modulus(E_cancellous, factor=None):
    """Modulus (MPa) of compacted bone around a kyphoplasty cavity: ``factor * E_cancellous``.

    Default factor 2.0 is an assumption (no published value; Purcell 2013 reports +/-28-40 % stress
    changes with the layer's modulus and thickness, so treat it as a sensitivity parameter).
    """
    factor = _c("compacted_factor") if factor is None else factor
    f = _check_positive("compacted_factor", factor)
    return _out(_check_positive("E_cancellous", E_cancellous, "MPa", cls=MaterialError) * f)


# --------------------------------------------------------------------------------------------------
# Subject helpers


def bmd_category(bmd):
    """QCT category of lumbar trabecular vBMD (mg/cm^3): ``"normal"`` (> 120), ``"low"`` (80 <= bmd <= 120),
    ``"osteoporotic"`` (< 80), per the ACR-type QCT guideline (PMC7495321 Table 2). Exactly 80 and
    exactly 120 are ``"low"``. Scalar -> str; array -> array of str.
    """
    b = _check_bmd(bmd)
    cat = np.where(b > _c("bmd_normal_threshold"), "normal",
                   np.where(b >= _c("bmd_osteoporosis_threshold"), "low", "osteoporotic"))
    return str(cat) if cat.ndim == 0 else cat


def cortical_modulus(bmd):
    """Cortical-shell modulus (MPa) for QCT trabecular vBMD (mg/cm^3).

    4700 MPa for osteoporosis (vBMD <= 80) and 12 000 MPa for normal bone (vBMD >= 120), the
    osteoporosis and normal values of the three-level property set of PMC12452785 (Table 3), with a
    linear ramp over the low-density band 80-120 [assumption]; the ramp's mean, 8350 MPa, is that table's
    osteopenia value. The ramp keeps parameter studies over vBMD free of jumps at the category limits.
    """
    b = _check_bmd(bmd)
    lo, hi = _c("bmd_osteoporosis_threshold"), _c("bmd_normal_threshold")
    t = np.clip((b - lo) / (hi - lo), 0.0, 1.0)
    return _out(_c("cortical_E_osteoporotic") + t * (_c("cortical_E_normal") - _c("cortical_E_osteoporotic")))


def _young(young_mean, young_sd):
    m = _c("young_mean") if young_mean is None else float(_check_range("young_mean", young_mean, *BMD_RANGE,
                                                                          unit="mg/cm^3"))
    s = _c("young_sd") if young_sd is None else float(_check_positive("young_sd", young_sd, "mg/cm^3"))
    return m, s


def t_score(bmd, young_mean=None, young_sd=None):
    """T-score ``(bmd - young_mean) / young_sd`` of QCT vBMD (mg/cm^3).

    Defaults 170 +/- 30 mg/cm^3 are an assumption (typical young-adult QCT values, not taken from a
    stored source); pass the reference of your scanner and population. Spine QCT diagnosis uses the
    absolute thresholds of :func:`bmd_category`, not T-scores.
    """
    m, s = _young(young_mean, young_sd)
    return _out((_check_bmd(bmd) - m) / s)


def bmd_from_t_score(t, young_mean=None, young_sd=None):
    """QCT vBMD (mg/cm^3) with T-score ``t``: ``young_mean + t * young_sd`` (see :func:`t_score`)."""
    m, s = _young(young_mean, young_sd)
    t = _check_range("t", t, -np.inf, np.inf, low_open=True, high_open=True)
    bmd = m + t * s
    if np.any(bmd <= BMD_RANGE[0]) or np.any(bmd > BMD_RANGE[1]):
        bad = np.atleast_1d(t)[np.atleast_1d((bmd <= BMD_RANGE[0]) | (bmd > BMD_RANGE[1]))][0]
        raise InputError(f"t = {bad:g} gives bmd = {m + bad * s:.4g} mg/cm^3 with young_mean {m:g}, young_sd "
                         f"{s:g}; allowed t in ({(BMD_RANGE[0] - m) / s:.3g}, {(BMD_RANGE[1] - m) / s:.3g}]")
    return _out(bmd)


def density_table(bmds=(50.0, 80.0, 100.0, 120.0, 150.0), laws=("morgan2003_vertebra", "kopperdahl2002"),
                  **conversion):
    """Rows ``{"bmd", "rho_app", "category", "bv_tv", "E_<law>"...}`` for QCT vBMD values (mg/cm^3)."""
    rows = []
    for b in bmds:
        rho = apparent_density(b, **conversion)
        row = {"bmd": float(b), "rho_app": rho, "category": bmd_category(b), "bv_tv": bone_volume_fraction(rho)}
        for name in laws:
            row[f"E_{name}"] = cancellous_modulus(bmd=b, law=name, **conversion)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# Material set for a spinal segment

REGIONS = ("cortex", "endplate", "cartilage_endplate", "cancellous", "annulus", "nucleus", "cement",
           "compacted_bone", "cement_bone", "posterior")
_ALIASES = {"cortical_shell": "cortex", "cortical": "cortex", "bony_endplate": "endplate",
            "cartilage": "cartilage_endplate", "trabecular": "cancellous", "posterior_elements": "posterior",
            "composite": "cement_bone", "pmma": "cement"}


@dataclass(frozen=True)
class MaterialSet:
    """Material choices for a spinal segment, with per-region elasticity.

    ``bmd`` is the QCT trabecular vBMD (mg/cm^3) of the cancellous bone; ``law`` names the density-modulus
    law; the Material fields accept a :class:`Material` or a key of :data:`MATERIALS`. ``anisotropic``
    switches cancellous bone to transverse isotropy about z with ``transverse_ratio``. ``cortical=None``
    (default) takes the shell modulus from ``bmd`` (:func:`cortical_modulus`: 4700 MPa osteoporotic to
    12 000 MPa normal); give a Material or name (e.g. ``"cortical_shell"``) to fix it. Change a field with
    ``dataclasses.replace(ms, bmd=60)`` or :meth:`with_`.

    The disc's annulus has two entries, one per disc model; the segment picks the one of its disc
    (:meth:`for_disc`): ``annulus`` (default ``annulus_ground``, 4.2 MPa) is the homogenised annulus of the
    fibre-free disc (``segment(..., fibres=False)``), ``annulus_matrix`` (default ``annulus_matrix``,
    0.966 MPa) the ground substance between the collagen fibres of the fibre-reinforced disc (the default
    segment). Either can be overridden; an override of the entry the segment's disc does not use, with the
    other left at its default, is an :class:`InputError` (it would be ignored silently).
    """

    bmd: float
    law: str = "morgan2003_vertebra"
    cortical: Material | None = None
    endplate: Material = field(default_factory=lambda: MATERIALS["bony_endplate"])
    cartilage: Material = field(default_factory=lambda: MATERIALS["cartilage_endplate"])
    annulus: Material = field(default_factory=lambda: MATERIALS[FIBRE_FREE_ANNULUS])
    annulus_matrix: Material = field(default_factory=lambda: MATERIALS[GROUND_SUBSTANCE])
    nucleus: Material = field(default_factory=lambda: MATERIALS["nucleus"])
    cement: Material = field(default_factory=lambda: MATERIALS["pmma"])
    posterior: Material = field(default_factory=lambda: MATERIALS["posterior_elements"])
    anisotropic: bool = False
    transverse_ratio: float = 0.42
    cancellous_nu: float = 0.2
    shear_rule: str = "geometric"
    compacted_factor: float = 2.0
    yield_strain_compression: float = YIELD_STRAIN_COMPRESSION
    yield_strain_tension: float = YIELD_STRAIN_TENSION
    ash_per_qct: float = 1.0
    ash_fraction: float = 0.6
    tissue_density: float = 2.0

    def __post_init__(self):
        _check_bmd(self.bmd)
        _law(self.law)
        for name in ("cortical", "endplate", "cartilage", "annulus", "annulus_matrix", "nucleus", "cement",
                     "posterior"):
            if name != "cortical" or self.cortical is not None:
                object.__setattr__(self, name, _material(getattr(self, name), name))
        _check_range("transverse_ratio", self.transverse_ratio, 0.0, 1.0)
        _check_range("cancellous_nu", self.cancellous_nu, -1.0, 0.5, high_open=True, cls=MaterialError)
        if self.shear_rule not in _SHEAR_RULES:
            raise InputError(f"shear_rule = {self.shear_rule!r}; allowed: {list(_SHEAR_RULES)}")
        _check_positive("compacted_factor", self.compacted_factor)
        _check_range("yield_strain_compression", self.yield_strain_compression, 0.0, 0.1)
        _check_range("yield_strain_tension", self.yield_strain_tension, 0.0, 0.1)
        _check_positive("ash_per_qct", self.ash_per_qct)
        _check_range("ash_fraction", self.ash_fraction, 0.0, 1.0)
        _check_positive("tissue_density", self.tissue_density, "g/cm^3")
        object.__setattr__(self, "bmd", float(self.bmd))

    def with_(self, **changes):
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    def for_disc(self, fibres):
        """The set as the cells of a disc see it: with ``fibres`` (the fibre-reinforced annulus) a copy whose
        ``annulus`` is ``annulus_matrix``, the ground substance between the fibres; without, this set (its
        homogenised ``annulus``). Raises :class:`InputError` where the entry of the other disc model was
        overridden and this model's left at its default (the override would be ignored)."""
        used, unused = ("annulus_matrix", "annulus") if fibres else ("annulus", "annulus_matrix")
        default = {"annulus": MATERIALS[FIBRE_FREE_ANNULUS], "annulus_matrix": MATERIALS[GROUND_SUBSTANCE]}
        given = getattr(self, unused)
        if given != default[unused] and getattr(self, used) == default[used] and given != getattr(self, used):
            disc = ("the fibre-reinforced disc, whose annulus is its ground substance annulus_matrix" if fibres
                    else "the fibre-free disc (fibres=False), whose annulus is the homogenised annulus")
            other = "fibres=False" if fibres else "fibres=True"
            raise InputError(f"materials.{unused} = {given.name!r} ({given.E:g} MPa) is not used by {disc} "
                             f"(materials.{used} = {getattr(self, used).name!r}, {getattr(self, used).E:g} MPa, "
                             f"the default); give materials.{used} instead, or build the segment with {other}")
        return dataclasses.replace(self, annulus=self.annulus_matrix) if fibres else self

    # derived scalars
    @property
    def apparent_density(self):
        """Cancellous apparent density (g/cm^3)."""
        return apparent_density(self.bmd, self.ash_per_qct, self.ash_fraction)

    @property
    def bone_volume_fraction(self):
        """Cancellous BV/TV (-)."""
        return bone_volume_fraction(self.apparent_density, self.tissue_density)

    @property
    def cancellous_E(self):
        """Axial cancellous modulus (MPa) from ``bmd`` and ``law``."""
        return cancellous_modulus(bmd=self.bmd, law=self.law, ash_per_qct=self.ash_per_qct,
                                  ash_fraction=self.ash_fraction)

    @property
    def cortical_material(self):
        """Cortical-shell :class:`Material`: ``cortical`` if given, else from ``bmd`` by :func:`cortical_modulus`."""
        if self.cortical is not None:
            return self.cortical
        lo, hi = CONSTANTS["cortical_E_osteoporotic"], CONSTANTS["cortical_E_normal"]
        b_lo, b_hi = _c("bmd_osteoporosis_threshold"), _c("bmd_normal_threshold")
        normal = MATERIALS["cortical_shell"]
        return Material("cortical_shell_by_bmd", cortical_modulus(self.bmd), normal.nu,
                        f"{lo.source} ({lo.value:g} / {hi.value:g} MPa at vBMD <= {b_lo:g} / >= {b_hi:g}); "
                        f"nu: {normal.source}",
                        f"vBMD {self.bmd:g} mg/cm^3; linear between {b_lo:g} and {b_hi:g} mg/cm^3 [assumption]",
                        "derived")

    @property
    def category(self):
        return bmd_category(self.bmd)

    def cement_bone(self):
        """Cement-bone composite Material from the cancellous BV/TV.

        Williams & Johnson 1989 linear fit (2400 MPa at BV/TV 0, 4400 MPa at 0.25) scaled by
        ``cement.E / 2400`` so that the composite equals the chosen cement at BV/TV 0 [assumption];
        ``nu`` is the cement's [assumption].
        """
        bv = self.bone_volume_fraction
        scale = self.cement.E / _c("composite_E0")
        E = scale * composite_modulus(bv, extrapolate=True)
        return Material("cement_bone", E, self.cement.nu, "Williams & Johnson 1989 static data, linear fit",
                        f"BV/TV = {bv:.3f}; scaled by cement E / 2400 = {scale:.3g}; nu from the cement "
                        "[assumption]", "derived")

    def region_material(self, region):
        """Isotropic :class:`Material` of ``region`` (for cancellous, the axial modulus and ``cancellous_nu``)."""
        r = self._region(region)
        if r == "cancellous":
            law = LAWS[self.law]
            return Material("cancellous", self.cancellous_E, self.cancellous_nu,
                            f"{law.source}: {law.formula()} at vBMD {self.bmd:g} mg/cm^3", law.site, law.status)
        if r == "compacted_bone":
            return Material("compacted_bone", self.cancellous_E * self.compacted_factor, self.cancellous_nu,
                            "Purcell 2013 (sensitivity only)", f"{self.compacted_factor:g} x cancellous",
                            "assumption")
        if r == "cement_bone":
            return self.cement_bone()
        return {"cortex": self.cortical_material, "endplate": self.endplate, "cartilage_endplate": self.cartilage,
                "annulus": self.annulus, "nucleus": self.nucleus, "cement": self.cement,
                "posterior": self.posterior}[r]

    def region_elasticity(self, region, n=None):
        """Elasticity of ``region`` (MPa): ``(6, 6)``, or ``(n, 6, 6)`` when ``n`` is given.

        Cancellous and compacted bone are transversely isotropic about z when ``anisotropic`` is set.
        Known regions: :data:`REGIONS` (aliases such as ``"cortical_shell"`` are accepted).
        """
        r = self._region(region)
        if r in ("cancellous", "compacted_bone"):
            E = self.cancellous_E * (self.compacted_factor if r == "compacted_bone" else 1.0)
            C = cancellous_elasticity(E, self.transverse_ratio, self.cancellous_nu, self.anisotropic,
                                      self.shear_rule)
        else:
            C = self.region_material(r).elasticity()
        return C if n is None else np.broadcast_to(C, (int(n), 6, 6)).copy()

    def cell_elasticity(self, region_tags, tag_names):
        """Per-cell elasticity ``(m, 6, 6)`` (MPa) from integer region tags ``(m,)`` and their names.

        ``tag_names`` maps tag -> region name (as ``Mesh.tag_names["region"]``). Vectorised: one matrix per
        region, gathered by tag. Raises :class:`InputError` for a tag without a name.
        """
        tags = np.asarray(region_tags)
        if tags.ndim != 1:
            raise InputError(f"region_tags has shape {tags.shape}; expected (m,)")
        uniq = np.unique(tags)
        missing = [int(t) for t in uniq if int(t) not in tag_names]
        if missing:
            raise InputError(f"region tags {missing} have no name in tag_names {dict(tag_names)}")
        table = np.stack([self.region_elasticity(tag_names[int(t)]) for t in uniq])
        return table[np.searchsorted(uniq, tags)]

    def _region(self, region):
        r = _ALIASES.get(region, region)
        if r not in REGIONS:
            raise InputError(f"region = {region!r} is not a known material region; known: {list(REGIONS)} "
                             f"(aliases {sorted(_ALIASES)})")
        return r

    def describe(self):
        """Every value used, as rows ``{"item", "value", "unit", "source", "status"}`` (list of dicts)."""
        law = LAWS[self.law]
        rows = [
            dict(item="bmd", value=self.bmd, unit="mg/cm^3", source="input (QCT trabecular vBMD)",
                 status="input"),
            dict(item="bmd_category", value=self.category, unit="-", source=CONSTANTS["bmd_normal_threshold"].source,
                 status="verified"),
            dict(item="ash_per_qct", value=self.ash_per_qct, unit="-", source=CONSTANTS["ash_per_qct"].source,
                 status=self._status("ash_per_qct", self.ash_per_qct)),
            dict(item="ash_fraction", value=self.ash_fraction, unit="-", source=CONSTANTS["ash_fraction"].source,
                 status=self._status("ash_fraction", self.ash_fraction)),
            dict(item="apparent_density", value=self.apparent_density, unit="g/cm^3",
                 source="bmd * ash_per_qct / 1000 / ash_fraction", status="derived"),
            dict(item="tissue_density", value=self.tissue_density, unit="g/cm^3",
                 source=CONSTANTS["tissue_density"].source, status=self._status("tissue_density", self.tissue_density)),
            dict(item="bone_volume_fraction", value=self.bone_volume_fraction, unit="-",
                 source="apparent_density / tissue_density", status="derived"),
            dict(item="law", value=law.name, unit="-", source=f"{law.source}; {law.formula()} (MPa, g/cm^3)",
                 status=law.status),
            dict(item="law_valid_range", value=f"{law.valid_range[0]:g}-{law.valid_range[1]:g}", unit="g/cm^3",
                 source=law.valid_range_source, status="memory" if "[memory]" in law.valid_range_source
                 else ("assumption" if law.valid_range_source.startswith("assumption") else "verified")),
            dict(item="cancellous_E_axial", value=self.cancellous_E, unit="MPa", source="law(density)",
                 status="derived"),
            dict(item="cancellous_nu", value=self.cancellous_nu, unit="-", source=CONSTANTS["cancellous_nu"].source,
                 status=self._status("cancellous_nu", self.cancellous_nu)),
            dict(item="anisotropic", value=self.anisotropic, unit="-", source="model choice", status="input"),
        ]
        if self.anisotropic:
            rows += [
                dict(item="transverse_ratio", value=self.transverse_ratio, unit="-",
                     source=CONSTANTS["transverse_ratio"].source,
                     status=self._status("transverse_ratio", self.transverse_ratio)),
                dict(item="cancellous_E_transverse", value=self.cancellous_E * self.transverse_ratio, unit="MPa",
                     source="transverse_ratio * E_axial", status="derived"),
                dict(item="cancellous_G_axial",
                     value=shear_modulus_axial(self.cancellous_E, self.transverse_ratio, self.cancellous_nu,
                                               self.shear_rule),
                     unit="MPa", source=f"shear rule {self.shear_rule!r} (Huber-type approximation)",
                     status="assumption"),
            ]
        for label, m in (("cortical", self.cortical_material), ("endplate", self.endplate), ("cartilage", self.cartilage),
                         ("annulus", self.annulus), ("annulus_matrix", self.annulus_matrix), ("nucleus", self.nucleus),
                         ("cement", self.cement),
                         ("posterior", self.posterior)):
            rows.append(dict(item=f"{label}.E ({m.name})", value=m.E, unit="MPa", source=m.source, status=m.status))
            rows.append(dict(item=f"{label}.nu ({m.name})", value=m.nu, unit="-", source=m.source, status=m.status))
        cb = self.cement_bone()
        rows += [
            dict(item="cement_bone.E", value=cb.E, unit="MPa", source=cb.source + f" ({cb.note})", status="derived"),
            dict(item="compacted_factor", value=self.compacted_factor, unit="-",
                 source=CONSTANTS["compacted_factor"].source, status="assumption"),
            dict(item="yield_strain_compression", value=self.yield_strain_compression, unit="-",
                 source=CONSTANTS["yield_strain_compression"].source,
                 status=self._status("yield_strain_compression", self.yield_strain_compression)),
            dict(item="yield_strain_tension", value=self.yield_strain_tension, unit="-",
                 source=CONSTANTS["yield_strain_tension"].source,
                 status=self._status("yield_strain_tension", self.yield_strain_tension)),
        ]
        return rows

    @staticmethod
    def _status(name, value):
        c = CONSTANTS[name]
        return c.status if np.isclose(value, c.value) else "input"


@dataclass(frozen=True)
class LevelMaterials:
    """Per-vertebra vBMD over one shared :class:`MaterialSet`.

    ``bmd`` maps each vertebra name to its QCT trabecular vBMD (mg/cm^3); every other choice (law,
    anisotropy, cortical, disc and cement materials, yield strains) is ``base``'s, whose own ``bmd`` is
    not used for bone cells. :meth:`for_level` gives the MaterialSet of one vertebra (its cortical shell
    modulus follows that vertebra's vBMD, as in :class:`MaterialSet`). A per-cell ``bmd`` cell field of
    the mesh (image-based segments) replaces the level value in the cancellous cells.
    """

    base: MaterialSet
    bmd: dict

    def __post_init__(self):
        if not isinstance(self.base, MaterialSet):
            raise InputError(f"LevelMaterials.base = {self.base!r}; expected a MaterialSet")
        try:
            items = dict(self.bmd).items()
        except (TypeError, ValueError):
            raise InputError(f"bmd = {self.bmd!r}; expected {{vertebra: vBMD mg/cm^3}}, e.g. "
                             f"{{'T12': 70, 'L1': 55}}") from None
        if not items:
            raise InputError("bmd = {}: give the vBMD of at least one vertebra")
        out = {}
        for level, value in items:
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise InputError(f"bmd[{level!r}] = {value!r}; expected a number in (0, 400] mg/cm^3") from None
            _check_range(f"bmd[{level!r}]", v, *BMD_RANGE, unit="mg/cm^3")
            out[str(level)] = v
        object.__setattr__(self, "bmd", out)

    def for_disc(self, fibres):
        """A copy whose ``base`` is ``base.for_disc(fibres)`` (see :meth:`MaterialSet.for_disc`)."""
        return dataclasses.replace(self, base=self.base.for_disc(fibres))

    def for_level(self, level):
        """The :class:`MaterialSet` of vertebra ``level`` (``base`` with that vBMD)."""
        if level not in self.bmd:
            raise InputError(f"level = {level!r} has no vBMD; levels with one: {list(self.bmd)}")
        return self.base.with_(bmd=self.bmd[level])

    def __getattr__(self, name):
        # choices shared by every level (cement, law, yield strains...) come from ``base``
        if name.startswith("_") or name in ("base", "bmd"):
            raise AttributeError(name)
        if name in ("cancellous_E", "apparent_density", "bone_volume_fraction", "category", "cement_bone",
                    "region_material", "region_elasticity", "cell_elasticity", "describe"):
            raise AttributeError(f"LevelMaterials.{name} depends on the vertebra; use for_level(level).{name}")
        return getattr(self.base, name)

    @property
    def cortical_material(self):
        """``{level: Material}`` of the cortical shell per vertebra."""
        return {lv: self.for_level(lv).cortical_material for lv in self.bmd}

    def mesh_elasticity(self, mesh):
        """Per-cell elasticity ``(m, 6, 6)`` (MPa) of ``mesh`` from its ``region`` and ``level`` tags.

        Bone cells take their vertebra's MaterialSet; disc and cement cells (no vBMD dependence) the
        base's. With a ``bmd`` cell field, cancellous cells get the density-modulus law at their own vBMD
        (vectorised, one matrix per cell).
        """
        region, rnames = mesh.cell_data["region"], mesh.tag_names["region"]
        level, lnames = mesh.cell_data["level"], mesh.tag_names["level"]
        C = np.empty((mesh.n_cells, 6, 6))
        for code in np.unique(level):
            name = lnames[int(code)]
            sel = level == code
            ms = self.for_level(name) if name in self.bmd else None
            if ms is None:
                bone = [rnames[int(r)] for r in np.unique(region[sel]) if _ALIASES.get(rnames[int(r)], rnames[int(r)])
                        in ("cortex", "endplate", "cancellous", "compacted_bone", "cement_bone")]
                if bone:
                    raise InputError(f"bmd has no entry for vertebra {name!r} (regions {bone}); levels with a "
                                     f"vBMD: {list(self.bmd)}")
                ms = self.base
            C[sel] = ms.cell_elasticity(region[sel], rnames)
        if "bmd" in mesh.cell_data:
            codes = [c for c, n in rnames.items() if n == "cancellous"]
            sel = np.isin(region, codes)
            if sel.any():
                b = self.base
                E = cancellous_modulus(bmd=mesh.cell_data["bmd"][sel], law=b.law, ash_per_qct=b.ash_per_qct,
                                       ash_fraction=b.ash_fraction)
                C[sel] = cancellous_elasticity(E, b.transverse_ratio, b.cancellous_nu, b.anisotropic, b.shear_rule)
        return C
