"""Names that moved: the old module keeps them as deprecated aliases.

``__getattr__ = moved(__name__, "vertebrafe.new_home", ("name", ...))`` in the old module makes
``old.name`` (and ``from old import name``) warn with a :class:`DeprecationWarning` and return
``new_home.name``. The new module is imported at that access, not when the old one is loaded, so an alias
never adds an import between the two (a name that moved to a module importing the old one stays
reachable without a cycle).
"""
import importlib
import warnings


def moved(old, new, names):
    """A module ``__getattr__`` forwarding ``names`` of module ``old`` to module ``new`` with a warning."""
    names = frozenset(names)

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old}.{name} is deprecated; use {new}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(new), name)

    return __getattr__
