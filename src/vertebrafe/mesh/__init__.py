"""The :class:`Mesh`: points, cells, tags, node and face sets, quality and file round trips.

A mesh is a set of plain numpy arrays:

* ``points`` ``(n, 3)`` float64, mm;
* ``cells`` ``(m, k)`` int64 node indices in VTK order (``k = 8`` for ``"hexahedron"``);
* ``cell_data`` ``{name: (m,) or (m, c)}``: integer tags (``region``, ``level``) or float fields;
* ``tag_names`` ``{tag: {value: name}}``: names of the integer tag values;
* ``node_sets`` ``{name: (p,) int64}``: sorted unique node indices;
* ``face_sets`` ``{name: (f, 4) int64}``: quads whose node order gives the outward normal
  (right-hand rule).

Everything is checked once on construction (:meth:`Mesh.validate` re-runs the checks after the
arrays were edited in place). The reference tables of the cell type (quadrature, gradients, faces)
come from :data:`vertebrafe.elements.ELEMENT_TYPES`, so the geometry code here is not specific to
hex8.

Files go through meshio. Only ``.vtu`` keeps everything (see :meth:`Mesh.save` for the encoding).
"""
from __future__ import annotations

from ..errors import MeshWarning
from ..io.names import FACESET_PREFIX, NODESET_PREFIX, TAGNAME_PREFIX
from ..io.vtu import write
from .box import box
from .core import Mesh
from .quality import Quality

__all__ = ["Mesh", "Quality", "MeshWarning", "box"]
