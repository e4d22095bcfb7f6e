"""vertebrafe: finite-element solver for vertebral biomechanics."""
from ._version import __version__
from . import errors
from .mesh import Mesh
from .fem import Model, RigidPlate, Solution

__all__ = ["__version__", "errors", "Mesh", "Model", "RigidPlate", "Solution"]
