"""Cell counts from the element size, so that halving the size below 1.5 mm refines uniformly.

Every count of the anatomy meshers (O-grid cells around and across the cross-section, cell layers of the
bodies and discs, cells of the posterior elements) is the number of cells of about the element size ``h``
along a length, rounded. Rounded independently at each size, halving ``h`` does not double every count
(the ring count of T12-L2 went 24 -> 42 from 1.5 to 0.75 mm), so the finer mesh of a convergence pair was
not a uniform refinement of the coarser one. Below :data:`REFINEMENT_BASE` the counts are therefore those
at the base size ``h * 2**j`` in ``[1.5, 3)`` mm, multiplied by ``2**j``: 2 -> 1 -> 0.5 mm and
1.5 -> 0.75 mm double every count exactly, and every cell stays within the rounding of the base size.
"""
from __future__ import annotations

__all__ = ["REFINEMENT_BASE", "refinement", "cell_count"]

#: Smallest element size (mm) whose counts are rounded directly; finer sizes refine a base size by 2**j.
REFINEMENT_BASE = 1.5


def refinement(element_size):
    """``(base size (mm), factor 2**j)`` with ``base = element_size * 2**j`` in ``[REFINEMENT_BASE, ...)``,
    ``j >= 0`` as small as possible (``j = 0`` at and above the base)."""
    h, f = float(element_size), 1
    while h < REFINEMENT_BASE:
        h, f = 2.0 * h, 2 * f
    return h, f


def cell_count(length, element_size, minimum=1, multiple=1):
    """Cells of about ``element_size`` along ``length`` (mm): ``max(minimum, multiple * round(length /
    (multiple * h)))`` at the base size ``h`` of :func:`refinement`, times its factor."""
    h, f = refinement(element_size)
    return f * max(int(minimum), int(multiple) * int(round(float(length) / (int(multiple) * h))))
