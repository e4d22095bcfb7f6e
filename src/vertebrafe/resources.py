"""Resource guards: the size and memory of a model estimated before meshing, checked against the memory
this process can use.

:func:`estimate_segment` counts nodes from the level dimensions (body volumes over ``h^3``, cortical and
endplate shells over ``h^2``) with two factors fitted to four meshes (within 15 %, docs/reliability.md). Memory is
:data:`BYTES_PER_DOF` per unknown (peak resident memory of mesh, assembly, AMG and fields, measured at 13-106 k
unknowns, with a margin) plus :data:`BASE_BYTES` for the interpreter and libraries. Both are estimates
for a guard, not predictions: :func:`check_memory` refuses a model whose estimate exceeds the available
memory unless ``force``.
"""
from __future__ import annotations

import math
import os

from .errors import ResourceError

#: Nodes per h^3 of vertebral body volume and per h^2 of shell (cortex and endplates) area: a calibration of
#: the guard (least squares on L1-L2 at 4 mm, L2-L4 at 3 and 2 mm, T10-L5 at 0.5 mm; all within 15 %).
#: The discs are not counted apart: their nodes are absorbed by the fit.
NODES_PER_VOLUME = 1.96
NODES_PER_SHELL = 3.81
#: Posterior elements multiply the node count by this factor (measured 1.23-1.27 on L1-L2, T12-L2, L4-L5
#: and T10-L5 at 4, 3 and 2 mm).
POSTERIOR_NODES = 1.25
#: The uniform O-grid (``segment(..., central_coarsening=1)``) multiplies it by at most this factor (measured
#: 0.84-1.62 on L1-L2 at 4 mm, T12-L2 at 3 and 2 mm and L4-L5 at 2 mm; m rounds differently on either grid).
UNIFORM_GRID_NODES = 1.6
#: Each further multiple of the annulus rings (``segment(..., annulus_refinement=k)``) adds at most this
#: fraction of the nodes (measured 0.26-0.50 per step of k on L1-L2 at 4 mm, T12-L2 at 3 and 2 mm and L4-L5
#: at 2 mm, on either grid, k = 2-4).
ANNULUS_RING_NODES = 0.5
#: Each further multiple of the articular processes' cell layers (``segment(..., articular_refinement=k)``) adds
#: at most this fraction of the nodes (measured 0.016-0.020 per step of k on L1-L2 and T10-L5 at 4 mm, L4-L5 and
#: T12-L2 at 3 mm and T12-L2 at 2 mm, k = 2 and 4).
ARTICULAR_LAYER_NODES = 0.025
BYTES_PER_DOF = 4000
BASE_BYTES = 300e6


def estimate_segment(levels, element_size, scale=1.0, n_cortex_layers=1, overrides=None, posterior=True,
                     central_coarsening=3, annulus_refinement=1, articular_refinement=1):
    """``{"nodes", "dofs", "bytes"}``: estimated size of the mesh of vertebrae ``levels`` at ``element_size``
    (mm), with or without ``posterior`` elements, on the default (``central_coarsening`` 3) or the uniform (1)
    O-grid with ``annulus_refinement`` times the annulus rings and, with posterior elements,
    ``articular_refinement`` times the articular processes' cell layers, and the peak memory (bytes) of solving
    it."""
    from .anatomy.levels import level_dimensions, level_order

    h = float(element_size)
    volume = shell = 0.0
    for name in level_order(levels):
        d = level_dimensions(name, scale, **((overrides or {}).get(name) or {}))
        w = 0.5 * (d.superior_width + d.inferior_width)
        dep = 0.5 * (d.superior_depth + d.inferior_depth)
        height = 0.5 * (d.anterior_height + d.posterior_height)
        area = math.pi / 4 * w * dep
        perimeter = math.pi * (3 * (w + dep) / 4 - math.sqrt(w * dep) / 2)     # ellipse (Ramanujan)
        volume += area * height
        shell += (2 * area + perimeter * height) * n_cortex_layers
    nodes = NODES_PER_VOLUME * volume / h ** 3 + NODES_PER_SHELL * shell / h ** 2
    nodes *= POSTERIOR_NODES if posterior else 1.0
    nodes *= UNIFORM_GRID_NODES if central_coarsening == 1 else 1.0
    nodes *= 1.0 + ANNULUS_RING_NODES * (annulus_refinement - 1)
    nodes *= 1.0 + ARTICULAR_LAYER_NODES * (articular_refinement - 1) if posterior else 1.0
    dofs = 3.0 * nodes
    return {"nodes": int(nodes), "dofs": int(dofs), "bytes": BASE_BYTES + BYTES_PER_DOF * dofs}


def available_memory():
    """Bytes this process can still use: the smaller of the system's available memory
    (``/proc/meminfo`` MemAvailable) and the room under a cgroup limit; None when unknown."""
    values = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    values.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit) as f:
                text = f.read().strip()
            with open(usage) as f:
                used = int(f.read().strip())
            if text != "max" and int(text) < 1 << 60:
                values.append(int(text) - used)
        except (OSError, ValueError):
            continue
    return min(values) if values else None


def check_memory(estimate, what, *, force=False, workers=1, available=None):
    """Raise :class:`ResourceError` when ``workers`` models of ``estimate`` (:func:`estimate_segment`) do
    not fit in the available memory, unless ``force``. ``what`` names the request in the message."""
    avail = available_memory() if available is None else available
    need = estimate["bytes"] * workers
    if force or avail is None or need <= avail:
        return
    per = f" x {workers} workers" if workers > 1 else ""
    raise ResourceError(f"{what}: about {estimate['dofs'] / 1e6:.3g} M unknowns, an estimated "
                        f"{need / 1e9:.3g} GB of memory{per}; available {avail / 1e9:.3g} GB; allowed: a model "
                        "that fits (a larger segment.element_size, fewer levels or workers), or --force "
                        "(force=True) to try anyway")

