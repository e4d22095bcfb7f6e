"""Former home of :mod:`vertebrafe.elasticity` (the elasticity matrices are on the ground floor now, below
the FE core, the materials and the anatomy). Importing this module warns; it will be removed."""
import warnings

from ..elasticity import (axial_modulus, check_range, isotropic, orthotropic,  # noqa: F401
                          transversely_isotropic, validate)

warnings.warn("vertebrafe.fem.elasticity is deprecated; use vertebrafe.elasticity", DeprecationWarning, stacklevel=2)
