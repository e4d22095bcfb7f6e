"""vertebrafe: finite-element solver for vertebral biomechanics.

Layers (each usable alone): :class:`Mesh`; the FE core :class:`Model` -> :class:`Solution`;
:mod:`vertebrafe.materials`; the anatomy meshers :func:`segment` -> :class:`Segment`.
"""
from ._version import __version__
from . import errors, materials
from .mesh import Mesh, box
from .fem import Model, RigidPlate, Solution
from .anatomy import Segment, segment

__all__ = ["__version__", "errors", "materials", "Mesh", "box", "Model", "RigidPlate", "Solution",
           "Segment", "segment"]
