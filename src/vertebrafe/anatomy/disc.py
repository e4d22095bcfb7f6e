"""Intervertebral disc geometry and mesh.

A disc fills the space between the superior endplate surface of the lower vertebra and the inferior
endplate surface of the upper one, concavities included. It reuses the node layers of those two surfaces
(the same O-grid cross-section as the vertebrae), so its nodes coincide with the endplate nodes exactly;
interior layers lie on straight lines between matching nodes. The nucleus is the block and transition
zones of the O-grid (inside the nucleus curve of :func:`~vertebrafe.anatomy.vertebra.nucleus_curve`: area
fraction and posterior offset from the disc's dimensions); everything outside, including the ring under
the cortical shell, is annulus.

Placement (:func:`stack_frame`): the upper vertebra is rotated about x relative to the lower one by the
segmental angle, ``vertebral wedge of the lower vertebra + disc wedge``, with the disc wedge =
``segmental angle - vertebral wedge of the upper vertebra``, so that the angle between the superior
endplates of the two vertebrae is exactly the segmental angle; the rim height at mid-depth is the disc's
``rim_height`` and the two vertebrae share the midsagittal mid-depth point (no listhesis).
"""
from __future__ import annotations

import math

import numpy as np

from ..deprecation import moved
from ..errors import InputError
from .resolution import cell_count
from .vertebra import DEFAULT_ELEMENT_SIZE, REGION_CODES, ZONE_BLOCK, ZONE_TRANSITION

__all__ = ["DISC_REFINEMENT", "rotation_x", "stack_frame", "disc_layers", "disc_layer_count", "disc_regions",
           "disc_wedge", "disc_rim_heights"]

#: ``disc()`` (one disc meshed alone) moved to :mod:`vertebrafe.anatomy.segment`; the old name warns.
__getattr__ = moved(__name__, "vertebrafe.anatomy.segment", ("disc",))


def rotation_x(angle_deg):
    """Rotation matrix ``(3, 3)`` about +x by ``angle_deg``; + tilts +z toward -y (lordotic)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def disc_wedge(disc_dims, upper_dims):
    """Disc wedge angle (deg, + lordotic) = segmental angle - wedge of the upper vertebra."""
    return disc_dims.segmental_angle - upper_dims.wedge


def disc_rim_heights(disc_dims, lower_dims, upper_dims):
    """``(anterior, posterior)`` disc heights (mm) at ``y = +-D/2`` of the lower vertebra's superior rim
    plane, ``D`` the mean of the adjacent endplate depths: ``rim_height +- D/2 tan(wedge)``."""
    D = 0.5 * (lower_dims.superior_depth + upper_dims.inferior_depth)
    t = math.tan(math.radians(disc_wedge(disc_dims, upper_dims)))
    return disc_dims.rim_height + 0.5 * D * t, disc_dims.rim_height - 0.5 * D * t


def stack_frame(lower_dims, disc_dims, upper_dims):
    """Pose of the upper vertebra in the lower vertebra's local frame: ``(R (3, 3), origin (3,))``.

    A point ``x`` in the upper vertebra's local frame is at ``R @ x + origin`` in the lower one's.
    """
    w_low = math.degrees(math.atan((lower_dims.anterior_height - lower_dims.posterior_height)
                                   / lower_dims.mean_depth))
    G = rotation_x(w_low)                                       # lower superior rim plane
    g = np.array([0.0, 0.0, lower_dims.rim_height])
    R = G @ rotation_x(disc_wedge(disc_dims, upper_dims))
    origin = g + G @ np.array([0.0, 0.0, disc_dims.rim_height])
    return R, origin


DISC_REFINEMENT = 2.0


def disc_layer_count(disc_dims, element_size=DEFAULT_ELEMENT_SIZE, refinement=DISC_REFINEMENT):
    """Element layers through the disc height: ``max(2, round(refinement * rim_height / element_size))``
    (below 1.5 mm ``2**j`` times the count at ``element_size * 2**j``, :func:`~.resolution.cell_count`).

    The disc gets ``refinement`` (default 2) times more layers than one per element size: its soft,
    nearly incompressible nucleus bulges the endplates and the annulus with steep gradients through the
    height. With one layer per element size the segment stiffness of T12-L2 changed by 6.6 % from 2 to
    1 mm elements; with two, by 1.6 % (docs/validation.md, mesh convergence), for 14 % more cells.
    """
    try:
        r = float(refinement)
    except (TypeError, ValueError):
        r = math.nan
    if not (np.isfinite(r) and r > 0.0):
        raise InputError(f"disc_refinement = {refinement!r}; expected a number > 0 (disc layers per element size)")
    return cell_count(r * disc_dims.rim_height, element_size, minimum=2)


def disc_layers(bottom, top, n_layers):
    """Node layers ``(n_layers + 1, n, 3)`` between matching ``bottom`` and ``top`` nodes ``(n, 3)``.

    Layer 0 is ``bottom`` and layer ``n_layers`` is ``top`` (the same arrays, bit for bit).
    """
    bottom, top = np.asarray(bottom, dtype=float), np.asarray(top, dtype=float)
    if bottom.shape != top.shape:
        raise InputError(f"disc_layers: bottom {bottom.shape} and top {top.shape} must match")
    eta = np.linspace(0.0, 1.0, int(n_layers) + 1)[:, None, None]
    out = (1.0 - eta) * bottom[None] + eta * top[None]
    out[0], out[-1] = bottom, top
    return out


def disc_regions(zone, n_layers):
    """Region codes ``(n_layers * q,)``: nucleus for block and transition zones, annulus elsewhere."""
    zone = np.asarray(zone)
    per = np.where((zone == ZONE_BLOCK) | (zone == ZONE_TRANSITION), REGION_CODES["nucleus"],
                   REGION_CODES["annulus"])
    return np.tile(per, int(n_layers))
