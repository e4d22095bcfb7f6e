"""Former home of :mod:`vertebrafe.springs` (spring sets are data below the FE core, built by the anatomy
and added by :meth:`vertebrafe.fem.Model.add_springs`). Its names warn; use ``vertebrafe.springs`` or
``vertebrafe.fem.spring_set``."""
from ..deprecation import moved

__getattr__ = moved(__name__, "vertebrafe.springs", ("KINDS", "SpringSet", "spring_set"))
