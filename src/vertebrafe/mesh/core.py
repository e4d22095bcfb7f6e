"""The :class:`Mesh` data type: arrays, tags with names, node and face sets, checks, geometry, extraction
and the meshio conversion."""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..elements import ELEMENT_TYPES
from ..errors import InvertedElementError, MeshError, MeshWarning
from ..io import meshcodec
from ..io.vtu import write
from .quality import Quality, cell_quality, cell_volumes

__all__ = ["Mesh"]

_SHOW = 10                # how many offending indices an error message names


# --------------------------------------------------------------------------------------------
# array helpers (vectorised, no loops over cells or nodes)


def _show(values):
    """Short text listing the first few of ``values``."""
    values = np.asarray(values).ravel()
    head = ", ".join(str(int(v)) for v in values[:_SHOW])
    return f"[{head}{', ...' if values.size > _SHOW else ''}]"


def _sort_rows(rows):
    """Sort each row of ``(r, k)`` ints; a min/max network for ``k = 4`` (quads), else ``np.sort``."""
    if rows.shape[1] != 4:
        return np.sort(rows, axis=1)
    a, b, c, d = (rows[:, j] for j in range(4))
    a, b = np.minimum(a, b), np.maximum(a, b)
    c, d = np.minimum(c, d), np.maximum(c, d)
    a, c = np.minimum(a, c), np.maximum(a, c)
    b, d = np.minimum(b, d), np.maximum(b, d)
    b, c = np.minimum(b, c), np.maximum(b, c)
    return np.stack([a, b, c, d], axis=1)


_HASH = np.random.default_rng(20240611).integers(1, 2**62, size=64, dtype=np.int64) | 1


def _sorted_row_groups(rows, n_max):
    """Group equal rows of an integer array regardless of the order inside each row.

    Parameters
    ----------
    rows : ndarray ``(r, k)`` int64, values in ``[0, n_max)``.

    Returns
    -------
    order : ndarray ``(r,)``
        Permutation that makes equal rows contiguous.
    group : ndarray ``(r,)``
        Group id of each row in that sorted order (0, 1, ..., non-decreasing).

    Sorts one 64-bit hash of each sorted row; if two different rows share a hash (checked, not
    assumed away) it falls back to an exact lexicographic sort.
    """
    s = _sort_rows(rows)
    r, k = s.shape
    if r == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    with np.errstate(over="ignore"):
        h = s @ _HASH[:k] if k <= _HASH.size else None
    if h is not None:
        order = np.argsort(h, kind="stable")
        ss = s[order]
        diff = np.any(ss[1:] != ss[:-1], axis=1)
        hs = h[order]
        if not np.any(diff & (hs[1:] == hs[:-1])):
            new = np.empty(r, dtype=bool)
            new[0] = True
            new[1:] = hs[1:] != hs[:-1]
            return order, np.cumsum(new) - 1
    order = np.lexsort(s.T[::-1])
    ss = s[order]
    new = np.empty(r, dtype=bool)
    new[0] = True
    np.any(ss[1:] != ss[:-1], axis=1, out=new[1:])
    return order, np.cumsum(new) - 1


def _as_index_array(values, n, field, allow_mask=True):
    """Node indices from an index array or a bool mask ``(n,)``: sorted unique int64."""
    a = np.asarray(values)
    if a.dtype == bool:
        if not allow_mask or a.shape != (n,):
            raise MeshError(f"{field}: bool mask of shape {a.shape}; expected shape ({n},) "
                            f"(one entry per point)")
        return np.flatnonzero(a).astype(np.int64)
    if a.size == 0:
        return np.zeros(0, np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise MeshError(f"{field}: dtype {a.dtype}; expected integer node indices or a bool mask")
    a = a.ravel().astype(np.int64)
    bad = (a < 0) | (a >= n)
    if bad.any():
        raise MeshError(f"{field}: node index {int(a[bad][0])} out of range; allowed 0 <= index < "
                        f"{n} ({int(bad.sum())} bad entries: {_show(a[bad])})")
    return np.unique(a)


def _cell_selection(mask, m, field="cell_mask"):
    """Bool mask ``(m,)`` from a bool mask or an index array of cells."""
    a = np.asarray(mask)
    if a.dtype == bool:
        if a.shape != (m,):
            raise MeshError(f"{field}: bool mask of shape {a.shape}; expected ({m},)")
        return a
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise MeshError(f"{field}: dtype {a.dtype}; expected a bool mask ({m},) or cell indices")
    a = a.ravel().astype(np.int64)
    bad = (a < 0) | (a >= m)
    if bad.any():
        raise MeshError(f"{field}: cell index {int(a[bad][0])} out of range; allowed 0 <= index < {m}")
    out = np.zeros(m, dtype=bool)
    out[a] = True
    return out


# --------------------------------------------------------------------------------------------


class Mesh:
    """An unstructured solid mesh of one cell type with tags and named node and face sets.

    Parameters
    ----------
    points : array_like ``(n, 3)``
        Node coordinates, mm. Stored as float64.
    cells : array_like ``(m, k)`` of int
        Node indices of each cell in VTK order (``k = 8`` for hexahedra). Stored as int64.
    cell_data : dict[str, array_like], optional
        Per-cell arrays ``(m,)`` (integer tags such as ``region``, ``level``, or float fields) or
        ``(m, c)`` float fields (e.g. fibre directions). Integer arrays are stored as int64, float
        arrays as float64; bool arrays are refused (store them as integers).
    tag_names : dict[str, dict[int, str]], optional
        Names of the values of integer tags, e.g. ``{"region": {1: "cortex", 2: "cancellous"}}``.
        Every value present in the tag must have a name; names are unique within a table.
    node_sets : dict[str, array_like], optional
        Named node sets: index arrays or bool masks ``(n,)``. Stored as sorted unique int64.
    face_sets : dict[str, array_like ``(f, 4)``], optional
        Named quad faces; the node order gives the outward normal by the right-hand rule.
    cell_type : str
        A key of :data:`vertebrafe.elements.ELEMENT_TYPES` (default ``"hexahedron"``).

    Raises
    ------
    MeshError
        Malformed input (shapes, dtypes, non-finite points, indices out of range, duplicate cells,
        tag values without a name...). The message names the field, the value and the allowed range.

    Warns
    -----
    MeshWarning
        Once, if some points are referenced by no cell (see :meth:`unused_nodes`).

    Notes
    -----
    Arrays that already have the right dtype are used as given (no copy); use :meth:`copy` for an
    independent mesh. After editing arrays in place, :meth:`validate` re-runs the checks.
    """

    def __init__(self, points, cells, cell_data=None, tag_names=None, node_sets=None,
                 face_sets=None, cell_type="hexahedron"):
        if cell_type not in ELEMENT_TYPES:
            raise MeshError(f"cell_type {cell_type!r} unknown; allowed: {sorted(ELEMENT_TYPES)}")
        self.cell_type = cell_type
        self.element = ELEMENT_TYPES[cell_type]
        self.points = self._check_points(points)
        self.cells = self._check_cells(cells)
        self.cell_data = {}
        self.tag_names = {}
        self.node_sets = {}
        self.face_sets = {}
        for name, values in (cell_data or {}).items():
            self.cell_data[str(name)] = self._check_cell_array(name, values)
        for tag, table in (tag_names or {}).items():
            self.tag_names[str(tag)] = self._check_tag_table(tag, table)
        for name, nodes in (node_sets or {}).items():
            self.add_node_set(name, nodes)
        for name, faces in (face_sets or {}).items():
            self.add_face_set(name, faces)
        self._check_duplicates()
        n_unused = self.unused_nodes().size
        if n_unused:
            warnings.warn(f"mesh has {n_unused} unused nodes of {self.n_points} (referenced by no "
                          f"cell); Mesh.unused_nodes() lists them", MeshWarning, stacklevel=2)

    # ---------------------------------------------------------------- validation
    def _check_points(self, points):
        p = np.asarray(points)
        if p.dtype == object or not (np.issubdtype(p.dtype, np.number) and not
                                     np.issubdtype(p.dtype, np.complexfloating)):
            raise MeshError(f"points: dtype {p.dtype}; expected real numbers (float64, mm)")
        p = np.ascontiguousarray(p, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise MeshError(f"points: shape {p.shape}; expected (n, 3)")
        finite = np.isfinite(p).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise MeshError(f"points: {bad.size} points have non-finite coordinates (NaN or inf), "
                            f"e.g. point {int(bad[0])} = {p[bad[0]].tolist()}; allowed: finite values "
                            f"(points {_show(bad)})")
        return p

    def _check_cells(self, cells):
        c = np.asarray(cells)
        k = self.element.n_nodes
        if c.size == 0 and c.ndim <= 2:
            c = c.reshape(0, k)
        if not np.issubdtype(c.dtype, np.integer):
            raise MeshError(f"cells: dtype {c.dtype}; expected integer node indices (int64)")
        if c.ndim != 2 or c.shape[1] != k:
            raise MeshError(f"cells: shape {c.shape}; expected (m, {k}) for cell_type "
                            f"{self.cell_type!r}")
        c = np.ascontiguousarray(c, dtype=np.int64)
        n = self.points.shape[0]
        if c.size:
            lo, hi = int(c.min()), int(c.max())
            if lo < 0 or hi >= n:
                bad_rows = np.flatnonzero(((c < 0) | (c >= n)).any(axis=1))
                value = lo if lo < 0 else hi
                raise MeshError(f"cells: node index {value} out of range; allowed 0 <= index < {n} "
                                f"(n_points); {bad_rows.size} cells affected: {_show(bad_rows)}")
        return c

    def _check_cell_array(self, name, values):
        m = self.cells.shape[0]
        a = np.asarray(values)
        if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer)
                                   or np.issubdtype(a.dtype, np.floating)):
            raise MeshError(f"cell_data[{name!r}]: dtype {a.dtype}; expected integer tags or float "
                            f"values")
        if a.ndim not in (1, 2) or a.shape[0] != m:
            raise MeshError(f"cell_data[{name!r}]: shape {a.shape}; expected ({m},) or ({m}, c) "
                            f"(one row per cell)")
        if np.issubdtype(a.dtype, np.integer):
            if a.ndim != 1:
                raise MeshError(f"cell_data[{name!r}]: integer tags must have shape ({m},), got "
                                f"{a.shape}")
            return np.ascontiguousarray(a, dtype=np.int64)
        return np.ascontiguousarray(a, dtype=np.float64)

    def _check_tag_table(self, tag, table):
        tag = str(tag)
        if tag not in self.cell_data:
            raise MeshError(f"tag_names[{tag!r}]: no cell_data of that name; cell_data has "
                            f"{sorted(self.cell_data)}")
        values = self.cell_data[tag]
        if values.dtype != np.int64:
            raise MeshError(f"tag_names[{tag!r}]: cell_data[{tag!r}] has dtype {values.dtype}; name "
                            f"tables need integer tags")
        try:
            clean = {int(k): str(v) for k, v in dict(table).items()}
        except (TypeError, ValueError) as exc:
            raise MeshError(f"tag_names[{tag!r}]: expected a dict {{int value: str name}}, got "
                            f"{table!r}") from exc
        names = list(clean.values())
        if len(set(names)) != len(names):
            dup = sorted({x for x in names if names.count(x) > 1})
            raise MeshError(f"tag_names[{tag!r}]: names {dup} appear more than once; names must be "
                            f"unique within a table")
        present = np.unique(values)
        missing = np.setdiff1d(present, np.fromiter(clean.keys(), np.int64, len(clean)))
        if missing.size:
            raise MeshError(f"cell_data[{tag!r}]: values {_show(missing)} have no name in "
                            f"tag_names[{tag!r}]; allowed values: {sorted(clean)}")
        return dict(sorted(clean.items()))

    def _check_duplicates(self):
        m = self.cells.shape[0]
        if m < 2:
            return
        order, group = _sorted_row_groups(self.cells, self.n_points)
        dup = np.flatnonzero(group[1:] == group[:-1])
        if dup.size:
            # all members of the first duplicated group
            g = group[dup[0]]
            members = np.sort(order[group == g])
            n_groups = np.unique(group[dup]).size
            raise MeshError(f"cells: duplicate cells (same nodes in any order): cells "
                            f"{_show(members)} share nodes {sorted(self.cells[members[0]].tolist())}; "
                            f"{n_groups} groups of duplicates in all; every cell must be unique")

    def validate(self):
        """Re-run all construction checks (after editing arrays or dicts in place).

        Raises :class:`MeshError` on the first problem found. Returns ``self``.
        """
        self.points = self._check_points(self.points)
        self.cells = self._check_cells(self.cells)
        self.cell_data = {str(k): self._check_cell_array(k, v) for k, v in self.cell_data.items()}
        self.tag_names = {str(k): self._check_tag_table(k, v) for k, v in self.tag_names.items()}
        node_sets, face_sets = self.node_sets, self.face_sets
        self.node_sets, self.face_sets = {}, {}
        for k, v in node_sets.items():
            self.add_node_set(k, v)
        for k, v in face_sets.items():
            self.add_face_set(k, v)
        self._check_duplicates()
        return self

    # ---------------------------------------------------------------- basic properties
    @property
    def n_points(self):
        """Number of points ``n``."""
        return self.points.shape[0]

    @property
    def n_cells(self):
        """Number of cells ``m``."""
        return self.cells.shape[0]

    @property
    def bounds(self):
        """Axis-aligned bounding box: ``(lower (3,), upper (3,))`` in mm."""
        return self.points.min(axis=0), self.points.max(axis=0)

    def __repr__(self):
        parts = [f"{self.n_cells} {self.cell_type} cells", f"{self.n_points} points"]
        if self.cell_data:
            items = []
            for k, v in self.cell_data.items():
                if k in self.tag_names:
                    items.append(f"{k} {list(self.tag_names[k].values())}")
                else:
                    items.append(f"{k} {v.dtype}{'' if v.ndim == 1 else f' x{v.shape[1]}'}")
            parts.append("cell data: " + ", ".join(items))
        if self.node_sets:
            parts.append("node sets: " + ", ".join(f"{k} ({v.size})" for k, v in self.node_sets.items()))
        if self.face_sets:
            parts.append("face sets: " + ", ".join(f"{k} ({len(v)})" for k, v in self.face_sets.items()))
        return "Mesh(" + "; ".join(parts) + ")"

    def copy(self):
        """Independent deep copy (arrays copied, no re-validation)."""
        new = object.__new__(Mesh)
        new.cell_type = self.cell_type
        new.element = self.element
        new.points = self.points.copy()
        new.cells = self.cells.copy()
        new.cell_data = {k: v.copy() for k, v in self.cell_data.items()}
        new.tag_names = {k: dict(v) for k, v in self.tag_names.items()}
        new.node_sets = {k: v.copy() for k, v in self.node_sets.items()}
        new.face_sets = {k: v.copy() for k, v in self.face_sets.items()}
        return new

    # ---------------------------------------------------------------- tags and sets
    def names(self, tag):
        """Names of the values of integer tag ``tag``, ordered by value: ``list[str]``."""
        return list(self._table(tag).values())

    def _table(self, tag):
        if tag not in self.tag_names:
            if tag in self.cell_data:
                raise MeshError(f"tag {tag!r} has no name table; tags with names: "
                                f"{sorted(self.tag_names)} (select by value with "
                                f"mesh.cell_data[{tag!r}] == value)")
            raise MeshError(f"tag {tag!r} unknown; known tags: {sorted(self.tag_names)}")
        return self.tag_names[tag]

    def cells_in(self, tag, names):
        """Bool mask ``(m,)`` of the cells whose tag ``tag`` has one of ``names``.

        ``names`` is one name or an iterable of names, e.g.
        ``mesh.cells_in("region", ["cortex", "endplate"])``. An unknown name raises
        :class:`MeshError` listing the known ones.
        """
        table = self._table(tag)
        if isinstance(names, str):
            names = [names]
        lookup = {v: k for k, v in table.items()}
        unknown = [x for x in names if x not in lookup]
        if unknown:
            raise MeshError(f"cells_in({tag!r}): unknown names {unknown}; known names: "
                            f"{list(table.values())}")
        values = np.array([lookup[x] for x in names], dtype=np.int64)
        return np.isin(self.cell_data[tag], values)

    def set_cell_data(self, name, values, names=None):
        """Add or replace cell array ``name`` ``(m,)`` or ``(m, c)``, optionally with a name table.

        ``names`` is ``{int value: str name}`` for integer tags. Validated like the constructor.
        """
        name = str(name)
        arr = self._check_cell_array(name, values)
        old_arr, old_table = self.cell_data.get(name), self.tag_names.get(name)
        self.cell_data[name] = arr
        self.tag_names.pop(name, None)
        try:
            if names is not None:
                self.tag_names[name] = self._check_tag_table(name, names)
        except MeshError:
            if old_arr is None:
                del self.cell_data[name]
            else:
                self.cell_data[name] = old_arr
            if old_table is not None:
                self.tag_names[name] = old_table
            raise

    def unused_nodes(self):
        """Indices ``(u,)`` int64 of the points referenced by no cell."""
        used = np.zeros(self.n_points, dtype=bool)
        used[self.cells.ravel()] = True
        return np.flatnonzero(~used)

    def nodes_of(self, cell_mask):
        """Sorted unique node indices ``(p,)`` int64 of the selected cells.

        ``cell_mask`` is a bool mask ``(m,)`` or an array of cell indices.
        """
        sel = _cell_selection(cell_mask, self.n_cells)
        used = np.zeros(self.n_points, dtype=bool)
        used[self.cells[sel].ravel()] = True
        return np.flatnonzero(used)

    def add_node_set(self, name, nodes):
        """Add or replace node set ``name`` from an index array or a bool mask ``(n,)``."""
        self.node_sets[str(name)] = _as_index_array(nodes, self.n_points, f"node_sets[{name!r}]")

    def add_face_set(self, name, faces):
        """Add or replace face set ``name``: faces ``(f, 4)`` int, outward normal by node order."""
        k = self.element.faces.shape[1]
        f = np.asarray(faces)
        if f.size == 0:
            f = f.reshape(0, k)
        field = f"face_sets[{name!r}]"
        if not np.issubdtype(f.dtype, np.integer):
            raise MeshError(f"{field}: dtype {f.dtype}; expected integer node indices")
        if f.ndim != 2 or f.shape[1] != k:
            raise MeshError(f"{field}: shape {f.shape}; expected (f, {k})")
        f = np.ascontiguousarray(f, dtype=np.int64)
        bad = (f < 0) | (f >= self.n_points)
        if bad.any():
            raise MeshError(f"{field}: node index {int(f[bad][0])} out of range; allowed "
                            f"0 <= index < {self.n_points}; faces affected: "
                            f"{_show(np.flatnonzero(bad.any(axis=1)))}")
        self.face_sets[str(name)] = f

    # ---------------------------------------------------------------- geometry
    def cell_centers(self):
        """Vertex averages of the cells ``(m, 3)``, mm (not the volume centroid of distorted cells)."""
        c = np.zeros((self.n_cells, 3))
        for a in range(self.cells.shape[1]):          # loop over the k local nodes only
            c += self.points[self.cells[:, a]]
        return c / self.cells.shape[1]

    def cell_volumes(self):
        """Cell volumes ``(m,)`` in mm^3 by Gauss integration of ``det(dx/dxi)``.

        Exact for trilinear hexahedra with the 2x2x2 rule. Inverted cells give negative volumes.
        """
        return cell_volumes(self.points, self.cells, self.element)

    def quality(self):
        """Per-cell :class:`Quality` (min Gauss-point det J, mm^3; scaled Jacobian, 1): :func:`cell_quality`."""
        return cell_quality(self.points, self.cells, self.element)

    def check_inverted(self):
        """Raise :class:`InvertedElementError` if any cell has ``det(dx/dxi) <= 0`` at a Gauss point.

        The error's ``cells`` lists all offending cell indices; the message names the first few and
        the count. Cells positive at every Gauss point but folded at a corner (a negative corner scaled
        Jacobian: the map is not one-to-one there, and the cell's stresses are unreliable) get a
        :class:`MeshWarning` that names them (a collapsed corner, 0, as of a wedge-shaped hexahedron, does not).
        Returns the computed :class:`Quality` when all cells are valid.
        """
        quality = self.quality()
        bad = quality.inverted
        if bad.size:
            worst = float(quality.min_jacobian[bad].min())
            raise InvertedElementError(
                f"{bad.size} of {self.n_cells} cells are inverted or degenerate (min det J <= 0 at a "
                f"Gauss point; allowed: > 0): cells {_show(bad)}, smallest det J {worst:.4g} mm^3. "
                f"Check the node order (VTK hexahedron: nodes 0-3 anticlockwise seen from nodes 4-7) "
                f"and the distortion of these cells.", cells=bad.tolist())
        folded = np.flatnonzero(quality.scaled_jacobian < 0.0)
        if folded.size:
            warnings.warn(f"{folded.size} of {self.n_cells} cells are folded at a corner (scaled Jacobian "
                          f"{float(quality.scaled_jacobian[folded].min()):.3g} < 0 at a node, positive at every Gauss "
                          f"point): cells {_show(folded)}; their map is not one-to-one and their stresses are "
                          "unreliable: untangle or remesh them", MeshWarning, stacklevel=2)
        return quality

    def _all_faces(self):
        """All cell faces ``(m * f, k)`` ordered by (cell, local face)."""
        return self.cells[:, self.element.faces].reshape(-1, self.element.faces.shape[1])

    def boundary_faces(self, return_index=False):
        """Faces that belong to exactly one cell, node order giving the outward normal.

        Returns
        -------
        faces : ndarray ``(b, 4)`` int64
            Ordered by (cell, local face).
        cells, local_faces : ndarray ``(b,)`` int64
            Only with ``return_index=True``: the owning cell and its local face index (a row of
            ``mesh.element.faces``).
        """
        nf = self.element.faces.shape[0]
        faces = self._all_faces()
        order, group = _sorted_row_groups(faces, self.n_points)
        counts = np.bincount(group)
        single = np.zeros(faces.shape[0], dtype=bool)
        single[order] = counts[group] == 1
        idx = np.flatnonzero(single)
        if return_index:
            return faces[idx], idx // nf, idx % nf
        return faces[idx]

    # ---------------------------------------------------------------- sub-meshes
    def extract(self, cell_mask):
        """Sub-mesh of the selected cells with compacted nodes and remapped sets.

        ``cell_mask`` is a bool mask ``(m,)`` or cell indices. Cell data and name tables are kept
        (name tables whole, even if some names no longer occur). Node sets keep their nodes that
        remain; face sets keep the faces that are faces of a selected cell (same nodes; the node
        order is kept as given). Empty sets are kept, empty.
        """
        sel = _cell_selection(cell_mask, self.n_cells)
        keep_nodes = self.nodes_of(sel)
        remap = np.full(self.n_points, -1, dtype=np.int64)
        remap[keep_nodes] = np.arange(keep_nodes.size)
        new = object.__new__(Mesh)
        new.cell_type = self.cell_type
        new.element = self.element
        new.points = self.points[keep_nodes]
        new.cells = remap[self.cells[sel]]
        new.cell_data = {k: v[sel] for k, v in self.cell_data.items()}
        new.tag_names = {k: dict(v) for k, v in self.tag_names.items()}
        new.node_sets = {}
        for k, v in self.node_sets.items():
            r = remap[v]
            new.node_sets[k] = r[r >= 0]
        new.face_sets = {}
        if self.face_sets:
            cell_faces = new._all_faces()
            for k, f in self.face_sets.items():
                r = remap[f]
                f2 = r[(r >= 0).all(axis=1)]
                if f2.shape[0]:
                    rows = np.concatenate([cell_faces, f2])
                    order, group = _sorted_row_groups(rows, new.n_points)
                    is_cell = np.zeros(rows.shape[0], dtype=bool)
                    is_cell[:cell_faces.shape[0]] = True
                    has_cell = np.zeros(group[-1] + 1 if group.size else 0, dtype=bool)
                    has_cell[group[is_cell[order]]] = True
                    in_group = np.empty(rows.shape[0], dtype=np.int64)
                    in_group[order] = group
                    f2 = f2[has_cell[in_group[cell_faces.shape[0]:]]]
                new.face_sets[k] = f2
        return new

    # ---------------------------------------------------------------- meshio and files
    def to_meshio(self):
        """A :class:`meshio.Mesh` carrying everything (see :meth:`save` for the encoding and
        :mod:`vertebrafe.io.meshcodec`): node sets as ``nodeset:NAME`` point data, name tables as
        ``tagname:TAG=NAME`` and face sets as ``faceset:NAME`` field data, names percent-encoded for
        ``% < > & " '``; :meth:`from_meshio` reads them back. Note that meshio's own VTU writer drops field
        data; :meth:`save` writes it."""
        return meshcodec.to_meshio(self)

    @classmethod
    def from_meshio(cls, m, cell_type=None):
        """Build a :class:`Mesh` from a :class:`meshio.Mesh` (:func:`vertebrafe.io.meshcodec.mesh_fields`).

        Takes all cell blocks of ``cell_type`` (default: the first block whose type is in
        :data:`~vertebrafe.elements.ELEMENT_TYPES`), concatenated; other blocks (boundary quads,
        vertices...) are ignored with a :class:`MeshWarning`. Reads back the encoding of
        :meth:`to_meshio`; gmsh physical names (``field_data = {name: [tag, dim]}`` with
        ``cell_data["gmsh:physical"]``) become the name table of ``gmsh:physical``. Other point data is
        ignored.
        """
        return cls(**meshcodec.mesh_fields(m, cell_type))

    def save(self, path, **kwargs):
        """Write the mesh to ``path``; the format follows the extension (meshio).

        ``.vtu`` keeps everything exactly (checked by the tests): points (Float64), cells, cell data
        (integers as Int64, floats as Float64), node sets as ``nodeset:NAME`` UInt8 point arrays
        (0/1 masks ParaView can colour or threshold), and in the ``FieldData`` section, shown in
        ParaView's information panel and spreadsheet view: one ``tagname:TAG=NAME`` Int64 array
        holding the value per named tag value, and ``faceset:NAME`` Int64 arrays of 4 components
        (one tuple per face, outward node order). Names containing ``% < > & " '`` appear
        percent-encoded in the file (e.g. ``%3C`` for ``<``) and are decoded by :meth:`load`.

        Other formats keep what their meshio writer keeps. Legacy ``.vtk`` keeps points, cells, cell
        data and node sets but drops name tables and face sets, and meshio refuses names with
        spaces there; Gmsh ``.msh``, Abaqus ``.inp`` and
        others may keep only points and cells. A :class:`MeshWarning` names what a non-VTU format
        is known to drop. ``kwargs`` go to ``meshio.write``.
        """
        write(path, self.to_meshio(), **kwargs)

    @classmethod
    def load(cls, path, cell_type=None):
        """Read a mesh file with meshio and convert it with :meth:`from_meshio`.

        Any reader failure is a :class:`~vertebrafe.errors.MeshError` naming the file and format; formats that
        need an optional package (h5py for ``.med``, ``.xdmf``) say how to install it
        (:mod:`vertebrafe.io.meshfile`)."""
        from ..io.meshfile import read

        return cls.from_meshio(read(path), cell_type=cell_type)
