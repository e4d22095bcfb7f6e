"""vertebrafe: finite-element solver for vertebral biomechanics."""
from ._version import __version__
from . import errors

__all__ = ["__version__", "errors"]
