"""vertebrafe: finite-element solver for vertebral biomechanics.

Layers (each usable alone): :class:`Mesh`; the FE core :class:`Model` -> :class:`Solution`;
:mod:`vertebrafe.materials`; the anatomy meshers :func:`segment` -> :class:`Segment`; the clinical
states :func:`fracture`, :func:`vertebroplasty`, :func:`kyphoplasty` and :func:`measure`; loading and
post-processing :class:`Load`, :mod:`vertebrafe.loads`, :func:`simulate` -> :class:`Result`; case files
and studies :func:`run_case`, :func:`load_case`, :mod:`vertebrafe.study`.
"""
from ._version import __version__
from . import errors, materials
from .mesh import Mesh, box
from .fem import Model, RigidPlate, Solution
from .anatomy import Segment, segment
from . import image
from .image import image_segment, phantom
from .clinical import fracture, kyphoplasty, measure, vertebroplasty
from . import loads
from .loads import Load
from .simulate import Result, simulate
from . import case, study
from .case import load_case, run_case

__all__ = ["__version__", "errors", "materials", "Mesh", "box", "Model", "RigidPlate", "Solution",
           "Segment", "segment", "image", "image_segment", "phantom", "fracture", "vertebroplasty", "kyphoplasty", "measure", "loads", "Load",
           "simulate", "Result", "case", "study", "load_case", "run_case"]
