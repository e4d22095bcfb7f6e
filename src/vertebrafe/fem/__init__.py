"""The linear-elastic finite-element core: kernels, assembly, constraints, solvers and solutions.

It knows nothing about vertebrae: any hex8 :class:`vertebrafe.Mesh` can be solved.
"""
from .model import Model, RigidPlate, Setup
from .solution import Solution
from ..cavity import FluidCavity
from ..springs import SpringSet, spring_set

__all__ = ["Model", "RigidPlate", "Solution", "SpringSet", "spring_set", "FluidCavity"]
