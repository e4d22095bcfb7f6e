"""Former home of :mod:`vertebrafe.elasticity` (the elasticity matrices are on the ground floor now, below
the FE core, the materials and the anatomy). Its names warn; use ``vertebrafe.elasticity``."""
from ..deprecation import moved

__getattr__ = moved(__name__, "vertebrafe.elasticity", ("axial_modulus", "check_range", "isotropic", "orthotropic",
                                                        "transversely_isotropic", "validate"))
