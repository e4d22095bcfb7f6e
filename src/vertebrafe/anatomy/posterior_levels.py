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

#: Whole-ligament force-elongation laws across one level, tension only, taut at zero strain: the
#: piecewise-linear (three-segment) laws of J Healthc Eng 2021, 5542595 Table 2 (PMC8147546, "property of
#: seven ligaments of the lumbar spine", citing its reference 5): stiffness ``k1`` (N/mm) from zero strain,
#: ``k2`` from the strain ``eps1``, ``k3`` from ``eps2``. The strains become elongations with the length
#: ``L`` of each ligament of an L4-L5 model (Naserkhaki et al. 2018, as tabulated in Front Bioeng
#: Biotechnol 2022, 9:799727 Table 2, PMC8766337). The source's interspinous row reads "0 < eps < 20: 1.4;
#: 13.9 < eps < 20: 1.5": the first range ends where the second begins, at 13.9 %. Stiffness of the whole
#: ligament, shared by its node pairs; the intertransverse ligament per side, the capsular ligament per
#: joint.
_LAWS = {  # k1, k2, k3 (N/mm), eps1, eps2, L (mm)
    "ALL": (347.0, 787.0, 1864.0, 0.122, 0.203, 15.58),
    "PLL": (29.5, 61.7, 236.0, 0.111, 0.23, 7.66),
    "LF": (7.7, 9.6, 58.2, 0.059, 0.49, 15.89),
    "ISL": (1.4, 1.5, 14.7, 0.139, 0.20, 8.85),
    "SSL": (2.5, 5.3, 34.0, 0.20, 0.25, 27.49),
    "ITL": (0.3, 1.8, 10.7, 0.182, 0.233, 18.69),
    "CL": (36.0, 159.0, 384.0, 0.25, 0.30, 2.17),
}
_LAW_SOURCE = ("J Healthc Eng 2021, 5542595 Table 2 (PMC8147546): {k1:g} / {k2:g} / {k3:g} N/mm from 0 / {e1:g} / "
               "{e2:g} % strain; L {L:g} mm (L4-L5, Naserkhaki et al. 2018 via PMC8766337 Table 2)")

#: First-segment stiffness (N/mm) of each ligament: ``{name: (k1, source)}`` (see ``_LAWS``).
LIGAMENTS = MappingProxyType({
    name: (k1, _LAW_SOURCE.format(k1=k1, k2=k2, k3=k3, e1=100 * e1, e2=100 * e2, L=L))
    for name, (k1, k2, k3, e1, e2, L) in _LAWS.items()})

#: The stiffening of each law: ``{name: (((added stiffness N/mm, onset elongation mm), ...), source)}``:
#: ``k2 - k1`` beyond ``eps1 L`` and ``k3 - k2`` beyond ``eps2 L`` (parallel springs on the same node pair,
#: slack up to their onset).
LIGAMENT_STIFFENING = MappingProxyType({
    name: (((k2 - k1, e1 * L), (k3 - k2, e2 * L)), LIGAMENTS[name][1])
    for name, (k1, k2, k3, e1, e2, L) in _LAWS.items()})


def posterior_dimensions(level):
    """``{field: value}`` (mm) of the posterior elements of vertebra ``level`` (T10-L5)."""
    return {k: v for k, (v, _) in POSTERIOR_TABLE[level].items()}


def ligament_law(name, elongation):
    """Axial force (N) of the whole ligament ``name`` (a key of :data:`LIGAMENTS`) at ``elongation`` (mm,
    array-like): the piecewise-linear, tension-only law ``k1 d + sum_i dk_i max(d - d_i, 0)`` for ``d > 0``
    (:data:`LIGAMENT_STIFFENING`), else 0."""
    d = np.asarray(elongation, dtype=float)
    f = LIGAMENTS[name][0] * d
    for dk, onset in LIGAMENT_STIFFENING.get(name, ((), ""))[0]:
        f = f + dk * np.clip(d - onset, 0.0, None)
    return np.where(d > 0.0, f, 0.0)


def facet_dimensions(disc):
    """``{field: value}`` of the facet joints at ``disc`` (e.g. ``'L4-L5'``): angles deg, area mm^2."""
    return {k: v for k, (v, _) in FACET_TABLE[disc].items()}
