"""Anatomy: per-level dimensions, vertebral body and disc meshers, multi-level segments.

>>> from vertebrafe.anatomy import segment
>>> seg = segment(["T12", "L1", "L2"], bmd=80.0, element_size=6.0)
>>> seg.levels, seg.discs
(('T12', 'L1', 'L2'), ('T12-L1', 'L1-L2'))

Modules: :mod:`~vertebrafe.anatomy.levels` (table T10-L5 with sources), :mod:`~vertebrafe.anatomy.vertebra`
(outline, O-grid cross-section, vertebral body), :mod:`~vertebrafe.anatomy.disc` (disc, stacking frame),
:mod:`~vertebrafe.anatomy.segment` (stacked conforming segment), :mod:`~vertebrafe.anatomy.grading`
(in-plane grading of the cross-section toward given curves),
:mod:`~vertebrafe.anatomy.assignment` (materials of a meshed segment), :mod:`~vertebrafe.anatomy.fibres`
(tension-only annulus fibres).
"""
from .levels import (DISC_TABLE, SOURCES, VERTEBRA_TABLE, DiscDimensions, VertebraDimensions, adjacent_discs,
                     disc_names, level_dimensions, level_order, segment_names, vertebra_names)
from .vertebra import (DEFAULT_CORTEX_THICKNESS, DEFAULT_ELEMENT_SIZE, DEFAULT_ENDPLATE_THICKNESS, REGION_CODES,
                       GridCounts, Outline, VertebraGeometry, concavity_profile, vertebra)
from .disc import stack_frame
from .grading import GradedCurve
from .fibres import AnnulusFibres, annulus_fibre_springs
from .assignment import cell_elasticity, with_materials
from .segment import Segment, disc, segment

__all__ = [
    "DISC_TABLE", "SOURCES", "VERTEBRA_TABLE", "DiscDimensions", "VertebraDimensions", "adjacent_discs",
    "disc_names", "level_dimensions", "level_order", "segment_names", "vertebra_names",
    "DEFAULT_CORTEX_THICKNESS", "DEFAULT_ELEMENT_SIZE", "DEFAULT_ENDPLATE_THICKNESS", "REGION_CODES",
    "GridCounts", "Outline", "VertebraGeometry", "concavity_profile", "vertebra", "disc", "stack_frame",
    "GradedCurve", "Segment", "cell_elasticity", "with_materials", "segment", "AnnulusFibres", "annulus_fibre_springs",
]
