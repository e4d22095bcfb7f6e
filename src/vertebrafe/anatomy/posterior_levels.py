"""Per-level dimensions of the posterior elements T10-L5, of the facet joints and the spinal ligaments.

Every value carries a source key (:data:`POSTERIOR_SOURCES`, the same convention as
:mod:`vertebrafe.anatomy.levels`); the table and the rules are in docs/anatomy.md ("Posterior
elements") and the mechanical values in docs/materials.md. Lengths mm, angles deg, areas mm^2, stiffness
N/mm.

Vertebra fields (``POSTERIOR_TABLE[level]``): ``canal_width`` (SCW) and ``canal_depth`` (SCD) of the
spinal canal, ``pedicle_width`` (PDW, transverse) and ``pedicle_height``; ``lamina_thickness``,
``spinous_length`` (lamina to tip), ``spinous_thickness``, ``spinous_height`` (at its base, the upper
part of the arch), ``transverse_length`` (pedicle to tip).

Facet-joint fields (``FACET_TABLE[disc]``, the joint between the inferior articular process of the upper
vertebra and the superior articular process of the lower one): ``angle`` between the joint plane and the
midsagittal plane in the transverse plane (0 = sagittal, 90 = coronal), ``inclination`` of the joint plane
to the transverse plane (90 = vertical), ``area`` of the (inferior) articular facet.
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

__all__ = ["POSTERIOR_SOURCES", "POSTERIOR_TABLE", "FACET_TABLE", "LIGAMENTS", "LIGAMENT_STIFFENING",
           "FACET_CARTILAGE", "posterior_dimensions", "facet_dimensions", "ligament_law"]

POSTERIOR_SOURCES = MappingProxyType({
    "P92": "Panjabi et al. 1992, Spine 17:299 (lumbar; 12 cadaveric spines; Tables 3-4, mean of right and "
           "left pedicle), transcribed in CTSpinoPelvic1K morphometrics/panjabi1992_lumbar.csv",
    "P91": "Panjabi et al. 1991, Spine 16:888 (thoracic; same 12 spines; Table 4), transcribed in "
           "CTSpinoPelvic1K morphometrics/panjabi_reference.csv",
    "CB21": "Cook & Baker 2021, IJSS 15:1072 (L5 pedicle height 12.9 mm, CT of 196 patients)",
    "PJ93": "Panjabi et al. 1993, Spine 18:1298 (articular facets; inferior facet area, right side), as "
            "tabulated by Patel et al. 2007 (indmedica, J Anat Soc India 56(1), Table 4)",
    "M04": "Masharawi et al. 2004, Spine 29:1755 (facet orientation to the midsagittal plane: T12-L2 "
           "25.9-33.9 deg, L3-L5 40.4-56.3 deg; range ends as quoted at kembrel.com)",
    "memory": "recollection of published data, not verified in a stored source",
    "assumption": "modelling choice without a direct source (typical adult proportions)",
    "interpolated": "gap filled between levels",
})

_V = {  # canal_width, canal_depth, pedicle_width, pedicle_height
    "T10": ((19.4, "assumption"), (16.0, "assumption"), (6.5, "memory"), (15.0, "memory")),
    "T11": ((19.4, "P91"), (16.0, "P91"), (7.5, "memory"), (15.0, "memory")),
    "T12": ((22.2, "P91"), (18.1, "P91"), (7.5, "memory"), (15.0, "memory")),
    "L1": ((23.7, "P92"), (19.0, "P92"), (8.6, "P92"), (15.0, "memory")),
    "L2": ((23.8, "P92"), (18.2, "P92"), (8.25, "P92"), (15.0, "memory")),
    "L3": ((24.3, "P92"), (17.5, "P92"), (10.15, "P92"), (14.5, "memory")),
    "L4": ((25.4, "P92"), (18.6, "P92"), (14.05, "P92"), (13.7, "interpolated")),
    "L5": ((27.1, "P92"), (19.7, "P92"), (18.6, "P92"), (12.9, "CB21")),
}
# lamina thickness, spinous length, spinous thickness, transverse length: the same for every level
_COMMON = {"lamina_thickness": (6.0, "assumption"), "spinous_length": (28.0, "assumption"),
           "spinous_thickness": (6.0, "assumption"), "spinous_height": (14.0, "assumption"),
           "transverse_length": (16.0, "assumption")}

_F = {  # angle to the midsagittal plane, inclination to the transverse plane, facet area
    "T10-T11": ((80.0, "memory"), (65.0, "memory"), (98.5, "PJ93")),
    "T11-T12": ((60.0, "memory"), (75.0, "memory"), (100.3, "PJ93")),
    "T12-L1": ((25.9, "M04"), (85.0, "memory"), (90.8, "PJ93")),
    "L1-L2": ((30.0, "interpolated"), (85.0, "memory"), (127.9, "PJ93")),
    "L2-L3": ((33.9, "M04"), (85.0, "memory"), (150.9, "PJ93")),
    "L3-L4": ((40.4, "M04"), (85.0, "memory"), (159.8, "PJ93")),
    "L4-L5": ((48.0, "interpolated"), (85.0, "memory"), (182.1, "PJ93")),
    "L5-S1": ((56.3, "M04"), (85.0, "memory"), (197.3, "PJ93")),
}

POSTERIOR_TABLE = MappingProxyType({
    v: MappingProxyType({**dict(zip(("canal_width", "canal_depth", "pedicle_width", "pedicle_height"), row)),
                         **_COMMON})
    for v, row in _V.items()})
FACET_TABLE = MappingProxyType({d: MappingProxyType(dict(zip(("angle", "inclination", "area"), row)))
                                for d, row in _F.items()})

#: Facet cartilage: Young's modulus (MPa), thickness of one layer (mm) and the clearance between the two
#: layers of an unloaded joint (mm). A joint's compression-only stiffness is ``E A / (2 t)`` (two layers
#: in series over the facet area ``A``); it carries load once its closure along the joint normal exceeds
#: the gap.
FACET_CARTILAGE = MappingProxyType({
    "modulus": (35.0, "Hindawi JHE 2017, 9618940 Table 2 (facet cartilage 35 MPa)"),
    "thickness": (0.8, "Womack et al., SBC 2011 (average lumbar facet cartilage assumed about 0.8 mm); the "
                       "measured overall mean of Woldtvedt et al. (J Biomech Eng 2011, abstract) is 0.57 mm"),
    "gap": (0.0, "assumption: layers in contact in the reference position (no published gap verified; the "
                 "same abstract finds the initial gap of little influence on the range of motion)"),
})

#: Linear stiffness (N/mm) of each ligament across one level (all its springs together; the intertransverse
#: ligament per side, the capsular ligament per joint), with the
#: source: ``k = E A / L`` with the small-strain modulus E, area A and length L of BMC Musculoskelet
#: Disord 2010, 11:151 Table 3 (PMC2913991); capsular: the first (toe) segment of the capsular ligament
#: of J Healthc Eng 2021, 5542595 Table 2 (PMC8147546). Ligaments are tension-only and taut at zero
#: strain (no slack); beyond a transition strain they stiffen (:data:`LIGAMENT_STIFFENING`).
LIGAMENTS = MappingProxyType({
    "ALL": (7.8 * 53.0 / 13.0, "PMC2913991 Table 3: E 7.8 MPa, A 53 mm^2, L 13 mm"),
    "PLL": (10.0 * 16.0 / 11.0, "PMC2913991 Table 3: E 10 MPa, A 16 mm^2, L 11 mm"),
    "LF": (15.0 * 67.0 / 19.0, "PMC2913991 Table 3: E 15 MPa, A 67 mm^2, L 19 mm"),
    "ISL": (10.0 * 26.0 / 13.0, "PMC2913991 Table 3: E 10 MPa, A 26 mm^2, L 13 mm"),
    "SSL": (8.0 * 23.0 / 11.0, "PMC2913991 Table 3: E 8 MPa, A 23 mm^2, L 11 mm"),
    "ITL": (10.0 * 1.8 / 22.0, "PMC2913991 Table 3: E 10 MPa, A 1.8 mm^2, L 22 mm (per side)"),
    "CL": (36.0, "PMC8147546 Table 2: capsular ligament, 36 N/mm below 25 % strain (per joint)"),
})

#: The stiffer second segment of the bilinear ligament laws of J Healthc Eng 2017, 9618940 Table 2, whose
#: first moduli are those of :data:`LIGAMENTS` (ALL 7.8, PLL 10, LF 15, ISL 10, SSL 8, ITL 10 MPa): above
#: the transition strain ``eps_t`` the modulus rises to ``E2``. With the area ``A`` and length ``L`` of
#: :data:`LIGAMENTS` this adds ``k2 = (E2 - E1) A / L`` (N/mm) beyond the elongation ``eps_t L`` (mm):
#: ``(k2, eps_t L, source)``. The capsular ligament keeps its single (toe) segment: its source gives no
#: area and length for the second one.
_BILINEAR = {  # E1, E2 (MPa), eps_t, A (mm^2), L (mm)
    "ALL": (7.8, 20.0, 0.12, 53.0, 13.0), "PLL": (10.0, 20.0, 0.11, 16.0, 11.0),
    "LF": (15.0, 19.5, 0.062, 67.0, 19.0), "ISL": (10.0, 11.6, 0.14, 26.0, 13.0),
    "SSL": (8.0, 15.0, 0.20, 23.0, 11.0), "ITL": (10.0, 58.7, 0.18, 1.8, 22.0),
}
LIGAMENT_STIFFENING = MappingProxyType({
    name: ((e2 - e1) * a / l, eps * l,
           f"J Healthc Eng 2017, 9618940 Table 2: E {e1:g} -> {e2:g} MPa at {100 * eps:g} % strain; A {a:g} mm^2, "
           f"L {l:g} mm of PMC2913991 Table 3")
    for name, (e1, e2, eps, a, l) in _BILINEAR.items()})


def posterior_dimensions(level):
    """``{field: value}`` (mm) of the posterior elements of vertebra ``level`` (T10-L5)."""
    return {k: v for k, (v, _) in POSTERIOR_TABLE[level].items()}


def ligament_law(name, elongation):
    """Axial force (N) of ligament ``name`` (a key of :data:`LIGAMENTS`) at ``elongation`` (mm, array-like):
    the bilinear, tension-only law ``k1 d + k2 max(d - d_t, 0)`` for ``d > 0``, else 0."""
    d = np.asarray(elongation, dtype=float)
    k1 = LIGAMENTS[name][0]
    k2, dt, _ = LIGAMENT_STIFFENING.get(name, (0.0, 0.0, ""))
    return np.where(d > 0.0, k1 * d + k2 * np.clip(d - dt, 0.0, None), 0.0)


def facet_dimensions(disc):
    """``{field: value}`` of the facet joints at ``disc`` (e.g. ``'L4-L5'``): angles deg, area mm^2."""
    return {k: v for k, (v, _) in FACET_TABLE[disc].items()}
