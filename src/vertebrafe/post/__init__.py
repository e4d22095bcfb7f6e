"""Post-processing of solved segments: per level and region metrics, strength and factor of risk,
and comparisons between results (adjacent-level ratios).

* :mod:`~vertebrafe.post.metrics` -- tidy metric rows (volume-weighted statistics, vertebra, disc and
  segment metrics);
* :mod:`~vertebrafe.post.strength` -- linear-FE strength (yield-volume and 0.2 % apparent strain) and the
  factor of risk;
* :mod:`~vertebrafe.post.pushover` -- pushover strength (elastic-perfectly-plastic cells, 0.2 % offset),
  valid for cemented vertebrae;
* :mod:`~vertebrafe.post.plate` -- the plate test (compression between rigid plates);
* :mod:`~vertebrafe.post.compare` -- ratio and change of every metric against a reference, with the levels
  adjacent to the treated one named.
"""
from .compare import compare, relations, treated_level
from .metrics import BONE_REGIONS, COLUMNS, metrics_frame, weighted_mean, weighted_quantile
from .plate import PlateTest, plate_test
from .pushover import Pushover, pushover
from .strength import (APPARENT_YIELD, DEFAULT_FRACTION, STRENGTH_CRITERIA, VertebraStrength, vertebra_pushover,
                       vertebra_strength, yield_scale)

__all__ = ["compare", "relations", "treated_level", "BONE_REGIONS", "COLUMNS", "metrics_frame", "weighted_mean",
           "weighted_quantile", "APPARENT_YIELD", "DEFAULT_FRACTION", "VertebraStrength", "vertebra_strength",
           "yield_scale", "PlateTest", "plate_test", "Pushover", "pushover", "STRENGTH_CRITERIA",
           "vertebra_pushover"]
