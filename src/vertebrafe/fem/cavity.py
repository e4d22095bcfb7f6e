"""Former home of :mod:`vertebrafe.cavity` (fluid cavities are data below the FE core, built by the anatomy
and added by :meth:`vertebrafe.fem.Model.add_springs`). Its names warn; use ``vertebrafe.cavity``."""
from ..deprecation import moved

__getattr__ = moved(__name__, "vertebrafe.cavity", ("WATER_BULK_MODULUS", "FluidCavity", "cavity_faces"))
