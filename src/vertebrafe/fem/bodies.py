"""The rigid-body motions of a model's stiff bodies (the bones between soft discs), for the deflation of the
direct active-set loop's CG (:class:`~vertebrafe.fem.spring_block.SpringBlock`).

The reference factorisation of that loop holds the cells and the linear springs only; stiff one-sided springs
that join separate bodies (facet contact, ligaments) restrain the bodies' relative motions, which the reference
sees only through the soft cells between them (the discs). Those motions are the largest eigenvalues of the
preconditioned operator (about 12-300 on T12-L2 at 2 mm: benchmarks/README.md, "Bodies' rigid motions in the
deflation"); six rigid-body modes per body remove them from CG.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from .solvers import rigid_body_modes


def check_labels(labels, n_cells):
    """``labels`` as an int64 ``(n_cells,)`` array (-1: a cell in no body), or None for None; InputError
    otherwise."""
    if labels is None:
        return None
    a = np.asarray(labels)
    if a.shape != (n_cells,) or not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"bodies has shape {a.shape} and dtype {a.dtype}; expected integer labels ({n_cells},), "
                         "one per cell (-1: in no body), or None")
    if a.size and a.min() < -1:
        raise InputError(f"bodies contains {int(a.min())}; labels are >= 0, or -1 for a cell in no body")
    return a.astype(np.int64)


class Bodies:
    """The bodies of a model on its blocks of unknowns (3 per node, then two per rigid plate: translation and
    rotation).

    labels (n_cells,) int: body of each cell (-1: none); cells (n_cells, k) node indices; plates: node
    indices of each rigid plate (a plate belongs to the body of all its nodes, else to none); coords
    (nb, 3) mm: the blocks' positions (nodes, then each plate's centre twice); rotation_blocks (nb,) bool:
    the plates' rotation blocks; free (3 nb,) bool: the unknowns that are not eliminated. A node shared by
    cells of two bodies goes to one of them (the modes only shape the deflation space, never the solution).
    """

    def __init__(self, labels, cells, plates, coords, rotation_blocks, free):
        n = coords.shape[0] - 2 * len(plates)
        block = np.full(coords.shape[0], -1, np.int64)
        inside = labels >= 0
        block[cells[inside].ravel()] = np.repeat(labels[inside], cells.shape[1])
        for i, nodes in enumerate(plates):
            owners = np.unique(block[nodes])
            block[n + 2 * i:n + 2 * i + 2] = owners[0] if owners.size == 1 else -1
        self.block = block
        self.coords = coords
        self.rotation_blocks = rotation_blocks
        self.free = free

    def modes(self, exclude):
        """Sparse ``(N, m)``: the six rigid-body modes of every body on its free unknowns outside ``exclude``
        (indices), orthonormal (a body with fewer independent modes there keeps fewer; one with none, none).
        Modes of different bodies have disjoint rows."""
        unknown_body = np.where(self.free, np.repeat(self.block, 3), -1)
        unknown_body[exclude] = -1
        rows, cols, vals = [], [], []
        m = 0
        for b in np.unique(unknown_body[unknown_body >= 0]):            # a few bodies: one dense QR each
            where = np.flatnonzero(unknown_body == b)
            blocks = np.unique(where // 3)
            center = self.coords[blocks].mean(axis=0)                   # rotations about the body's centre
            B = rigid_body_modes(self.coords[blocks] - center, self.rotation_blocks[blocks])
            B = B[3 * np.searchsorted(blocks, where // 3) + where % 3]
            q, r = np.linalg.qr(B)
            keep = np.abs(np.diag(r)) > 1e-10 * np.abs(np.diag(r)).max()
            q = q[:, keep]
            rows.append(np.repeat(where, q.shape[1]))
            cols.append(np.tile(m + np.arange(q.shape[1]), where.size))
            vals.append(q.ravel())
            m += q.shape[1]
        if not m:
            return sp.csr_matrix((self.free.size, 0))
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(self.free.size, m))
