"""Human-readable names of case keys, metrics, regions and level relations, for figures and tables.

One table per kind; units come from where the quantity is defined (the case schema for case keys, the
metric table's ``unit`` column for metrics), so a label never disagrees with the data. A name that is
not in a table is shown as it is.
"""
from __future__ import annotations

__all__ = ["PARAMETERS", "METRICS", "RELATIONS", "parameter", "parameter_name", "metric", "relation", "unit",
           "with_unit"]

#: case keys (dotted) -> label
PARAMETERS = {
    "segment.levels": "levels",
    "segment.element_size": "element size",
    "segment.cortex_thickness": "cortical shell thickness",
    "segment.endplate_thickness": "endplate thickness",
    "segment.n_cortex_layers": "cortical element layers",
    "segment.scale": "size scale",
    "bone.bmd": "vBMD",
    "bone.t_score": "T-score",
    "bone.law": "density-modulus law",
    "fracture.level": "fractured level",
    "fracture.kind": "fracture type",
    "fracture.grade": "Genant grade",
    "fracture.height_loss": "height loss",
    "treatment.kind": "treatment",
    "treatment.level": "treated level",
    "treatment.volume": "cement volume",
    "treatment.fill": "cement fill fraction",
    "treatment.approach": "approach",
    "treatment.material": "cement phase",
    "treatment.restoration": "height restoration",
    "treatment.balloons": "balloons",
    "treatment.rim_thickness": "compacted rim thickness",
    "treatment.surface": "cement surface",
    "load.preset": "load",
    "load.compression": "compression",
    "load.flexion": "flexion moment",
    "load.extension": "extension moment",
    "load.lateral_bending": "lateral bending moment",
    "load.axial_rotation": "axial moment",
    "load.anterior_shear": "anterior shear",
    "load.lateral_shear": "lateral shear",
}

#: metric names -> label
METRICS = {
    "volume": "volume",
    "von_mises_mean": "mean von Mises stress",
    "von_mises_median": "median von Mises stress",
    "von_mises_p95": "95th-percentile von Mises stress",
    "von_mises_max": "maximum von Mises stress",
    "von_mises_peak": "peak von Mises stress",
    "min_principal_stress_p05": "5th-percentile minimum principal stress",
    "max_principal_strain_p95": "95th-percentile maximum principal strain",
    "strain_energy_density_mean": "mean strain energy density",
    "yield_fraction": "yielded volume fraction",
    "yield_fraction_compression": "volume fraction yielded in compression",
    "yield_fraction_tension": "volume fraction yielded in tension",
    "height": "height",
    "height_change": "height change",
    "apparent_strain": "apparent strain",
    "superior_endplate_deflection": "superior endplate deflection",
    "inferior_endplate_deflection": "inferior endplate deflection",
    "cortical_share": "cortical load share",
    "strength_yield": "strength (yield volume)",
    "strength_apparent": "strength (0.2 % apparent strain)",
    "factor_of_risk": "factor of risk (load / plate strength)",
    "overload_index_yield": "in-situ overload index (yield volume)",
    "overload_index_apparent": "in-situ overload index (0.2 % apparent strain)",
    "plate_stiffness": "stiffness between plates",
    "plate_strength_yield": "strength between plates (yield volume)",
    "plate_strength_apparent": "strength between plates (0.2 % apparent strain)",
    "plate_strength_pushover": "strength between plates (pushover limit load)",
    "min_principal_strain_p05": "5th-percentile minimum principal strain",
    "pressure": "nucleus pressure",
    "pressure_max": "maximum nucleus pressure",
    "axial_stiffness": "axial stiffness",
    "displacement_along_load": "displacement along the load",
    "rotation_flexion": "flexion rotation",
    "rotation_lateral_bending": "lateral bending rotation",
    "rotation_axial": "axial rotation",
}

#: level relations of the comparison (and plot ``relation`` values) -> label
RELATIONS = {
    "adjacent": "adjacent vertebrae",
    "adjacent_superior": "superior adjacent vertebra",
    "adjacent_inferior": "inferior adjacent vertebra",
    "treated": "treated vertebra",
    "disc_superior": "disc above the treated level",
    "disc_inferior": "disc below the treated level",
    "remote": "remote levels",
    "segment": "segment",
}


def unit(text):
    """A unit for display: ``mg/cm^3`` -> ``mg/cm³`` (``^2``, ``^3``, ``^-1`` as superscripts)."""
    return (text or "").replace("^-1", "⁻¹").replace("^2", "²").replace("^3", "³")


def with_unit(label, unit_text):
    """``"label [unit]"``, or the label alone for dimensionless quantities (``""``, ``"-"``)."""
    return f"{label} [{unit(unit_text)}]" if unit_text and unit_text != "-" else label


def parameter_name(key):
    """Name of a dotted case key without unit: :data:`PARAMETERS`, or a muscle force
    (``"load.muscles.erector_spinae.L1"`` -> ``"erector spinae force on L1"``)."""
    parts = key.split(".")
    if key not in PARAMETERS and len(parts) == 4 and parts[:2] == ["load", "muscles"]:
        return f"{parts[2].replace('_', ' ')} force on {parts[3]}"
    return PARAMETERS.get(key, key)


def parameter(key, unit=""):
    """Label of a dotted case key (``"treatment.volume"`` -> ``"cement volume [mL]"`` with its unit)."""
    return with_unit(parameter_name(key), unit)


def metric(name, unit=""):
    return with_unit(METRICS.get(name, name.replace("_", " ")), unit)


def relation(name):
    return RELATIONS.get(name, name)
