"""The plate test: a body compressed between rigid plates, the one set-up shared by the strength estimate
(:func:`~vertebrafe.post.strength.vertebra_strength`), the tests and the benchmarks.

The ``fixed`` nodes are held (all three components, or tied to a fixed rigid plate with
``fixed_plate=True``); the ``loaded`` nodes are tied to a rigid plate whose axial (z) translation is
prescribed as ``-displacement`` (mm, compression) and whose rotation is held at ``rotation`` (rad; None
leaves it free); its sideways translation is free, or held at zero with ``hold_sideways=True``. The axial reaction of that plate is the force.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PlateTest", "plate_test"]


@dataclass(frozen=True)
class PlateTest:
    """Result of :func:`plate_test`: ``force`` (N, axial reaction of the loaded plate, positive in
    compression), ``stiffness`` (N/mm, force / displacement), ``displacement`` (mm), the ``solution`` and
    the loaded ``plate``."""

    force: float
    stiffness: float
    displacement: float
    solution: object
    plate: object


def plate_test(mesh, C, fixed, loaded, displacement, *, fixed_plate=False, rotation=(0.0, 0.0, 0.0),
               hold_sideways=False, formulation="bbar", **solver_options):
    """Compress ``mesh`` (elasticity ``C (m, 6, 6)`` MPa) between rigid plates; see the module docstring.

    ``fixed``, ``loaded``: node indices; ``displacement``: plate travel (mm, > 0 compresses); ``formulation``
    and ``solver_options`` go to :class:`~vertebrafe.fem.Model` and its ``solve``. Returns a
    :class:`PlateTest`.
    """
    from ..fem import Model

    model = Model(mesh, C=C, formulation=formulation)
    if fixed_plate:
        model.rigid_plate(fixed).fix()
    else:
        model.fix(fixed, "xyz")
    plate = model.rigid_plate(loaded)
    side = 0.0 if hold_sideways else None
    plate.prescribe(translation=(side, side, -float(displacement)), rotation=rotation)
    sol = model.solve(**solver_options)
    force = -float(sol.plate_reaction(plate)[0][2])
    return PlateTest(force=force, stiffness=force / float(displacement), displacement=float(displacement),
                     solution=sol, plate=plate)
