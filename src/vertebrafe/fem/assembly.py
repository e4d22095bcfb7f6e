"""Sparse assembly straight into block-CSR (BSR, 3x3 blocks).

Unknowns are grouped in *blocks* of three DOFs: one block per mesh node (ux, uy, uz) and two per
rigid plate (translation, rotation). A node tied to a plate has no unknowns of its own: the elements
around it see the plate blocks instead, through the exact small-rotation map
``u = t + theta x (x - c)``. Prescribed DOFs are eliminated: their columns move to the right-hand side
and their rows become a decoupled diagonal, so the matrix keeps its 3x3 block structure (which the
AMG preconditioner exploits) and stays symmetric positive definite.

The sparsity pattern is built once from node-cell adjacency; the cells are then cut into contiguous
chunks coloured so that no two chunks of one colour share a node, and the chunks of each colour are
assembled in parallel, every cell adding its element matrix straight into its slots. No COO triplets are ever stored.

Voxel meshes take a fast path (:func:`reference_stiffness`): when every cell is a translate of the first
(identical boxes, as in a mesh of image voxels), a cell's stiffness depends only on its elasticity and
formulation, and is linear in the elasticity (also after condensing internal modes). Each cell's ``C`` is
split into a scale ``s`` (the mean of ``C_11, C_22, C_33``) and a shape ``C / s``; one reference matrix is
integrated per distinct (shape, formulation) -- for isotropic cells one per Poisson ratio -- and every cell
adds ``s * K_ref``.
"""
import numpy as np
from numba import njit, prange

from .jit import threaded
from .kernels import element_stiffness

#: Cells are translates of one another when their node offsets agree within this fraction of the cell size.
TRANSLATE_RTOL = 1e-9
#: Decimals of the elasticity shape ``C / s`` that identify a reference stiffness.
SHAPE_DECIMALS = 12


@njit(cache=True)
def _cell_blocks(cell, node_plate, n_nodes, out):
    """Distinct blocks touched by one cell; returns how many were written to ``out``."""
    cnt = 0
    for a in range(cell.shape[0]):
        node = cell[a]
        p = node_plate[node]
        if p < 0:
            first, ncand = node, 1
        else:
            first, ncand = n_nodes + 2 * p, 2
        for c in range(ncand):
            b = first + c
            seen = False
            for i in range(cnt):
                if out[i] == b:
                    seen = True
                    break
            if not seen:
                out[cnt] = b
                cnt += 1
    return cnt


@njit(cache=True)
def _sort_slice(a, lo, hi):
    """Sort ``a[lo:hi]`` in place: a Shell sort with Knuth's gaps (O(n^1.5) at worst, for the long rows of
    rigid-plate blocks; the rows of nodes are a few dozen long). The entries are distinct, so any correct
    sort gives the same order; numba's ``ndarray.sort`` cost 2.5 s of the warm-up's compilation."""
    h = 1
    while h < (hi - lo) // 3:
        h = 3 * h + 1
    while h > 0:
        for i in range(lo + h, hi):
            v = a[i]
            j = i
            while j - lo >= h and a[j - h] > v:
                a[j] = a[j - h]
                j -= h
            a[j] = v
        h //= 3


@njit(cache=True)
def block_pattern(cells, node_plate, n_nodes, n_plates):
    """Block sparsity pattern: ``indptr (nb+1,)``, ``indices (nnzb,)`` sorted per row, self-blocks included.

    cells (m, k) int64; node_plate (n,) plate index of each node or -1.
    """
    m, k = cells.shape
    nb = n_nodes + 2 * n_plates
    tmp = np.empty(2 * k, np.int64)
    # block -> cells adjacency
    count = np.zeros(nb + 1, np.int64)
    for e in range(m):
        c = _cell_blocks(cells[e], node_plate, n_nodes, tmp)
        for i in range(c):
            count[tmp[i] + 1] += 1
    ptr = np.cumsum(count)
    fill = ptr[:-1].copy()
    adj = np.empty(ptr[-1], np.int64)
    for e in range(m):
        c = _cell_blocks(cells[e], node_plate, n_nodes, tmp)
        for i in range(c):
            adj[fill[tmp[i]]] = e
            fill[tmp[i]] += 1
    # rows: two passes with a marker array
    marker = np.full(nb, -1, np.int64)
    rowlen = np.zeros(nb + 1, np.int64)
    for b in range(nb):
        marker[b] = b
        n = 1
        for j in range(ptr[b], ptr[b + 1]):
            c = _cell_blocks(cells[adj[j]], node_plate, n_nodes, tmp)
            for i in range(c):
                if marker[tmp[i]] != b:
                    marker[tmp[i]] = b
                    n += 1
        rowlen[b + 1] = n
    indptr = np.cumsum(rowlen)
    indices = np.empty(indptr[-1], np.int64)
    marker[:] = -1
    for b in range(nb):
        pos = indptr[b]
        marker[b] = b
        indices[pos] = b
        pos += 1
        for j in range(ptr[b], ptr[b + 1]):
            c = _cell_blocks(cells[adj[j]], node_plate, n_nodes, tmp)
            for i in range(c):
                if marker[tmp[i]] != b:
                    marker[tmp[i]] = b
                    indices[pos] = tmp[i]
                    pos += 1
        _sort_slice(indices, indptr[b], indptr[b + 1])
    return indptr, indices


@njit(cache=True)
def block_components(cells, node_plate, n_nodes, n_plates):
    """Connected parts of the model: a label ``(nb,)`` per block, blocks linked through cells and plate
    ties (union-find; blocks of unused nodes are parts of their own)."""
    nb = n_nodes + 2 * n_plates
    parent = np.arange(nb)
    tmp = np.empty(2 * cells.shape[1], np.int64)

    def root(b):
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    for e in range(cells.shape[0]):
        c = _cell_blocks(cells[e], node_plate, n_nodes, tmp)
        r0 = root(tmp[0])
        for i in range(1, c):
            r = root(tmp[i])
            if r != r0:
                parent[r] = r0
    for p in range(n_plates):
        parent[root(n_nodes + 2 * p + 1)] = root(n_nodes + 2 * p)
    label = np.empty(nb, np.int64)
    for b in range(nb):
        label[b] = root(b)
    return label


@njit(cache=True)
def _node_groups(cells, order, group, slot, out, fill):
    """Visit each (node, group) pair once, cells taken in ``order`` (sorted by group).

    ``fill=False``: count the pairs per node in ``slot``. ``fill=True``: ``slot`` holds each node's next
    free position in ``out``, where the group is written.
    """
    last = np.full(slot.shape[0], -1, np.int64)
    for i in range(order.shape[0]):
        e = order[i]
        for a in range(cells.shape[1]):
            node = cells[e, a]
            if last[node] != group[e]:
                last[node] = group[e]
                if fill:
                    out[slot[node]] = group[e]
                slot[node] += 1


@njit(cache=True)
def _color_groups(cells, n_nodes, group, n_groups):
    """Greedy colouring of cell groups so that groups of one colour share no node; ``(n_groups,)``."""
    m, k = cells.shape
    # node -> groups adjacency (each group listed once per node): count, then fill
    # cells by group in their stored order (a counting sort: np.argsort's mergesort cost 2 s to compile)
    first = np.zeros(n_groups + 1, np.int64)
    for e in range(m):
        first[group[e] + 1] += 1
    for g in range(n_groups):
        first[g + 1] += first[g]
    order = np.empty(m, np.int64)
    for e in range(m):
        order[first[group[e]]] = e
        first[group[e]] += 1
    count = np.zeros(n_nodes + 1, np.int64)
    _node_groups(cells, order, group, count[1:], count, False)
    ptr = np.cumsum(count)
    adj = np.empty(ptr[-1], np.int64)
    _node_groups(cells, order, group, ptr[:-1].copy(), adj, True)
    color = np.full(n_groups, -1, np.int64)
    forbidden = np.full(n_groups + 1, -1, np.int64)
    start = 0
    for gi in range(n_groups):
        # cells of group gi are order[start:stop]
        stop = start
        while stop < m and group[order[stop]] == gi:
            stop += 1
        for i in range(start, stop):
            e = order[i]
            for a in range(k):
                node = cells[e, a]
                for j in range(ptr[node], ptr[node + 1]):
                    other = adj[j]
                    if color[other] >= 0:
                        forbidden[color[other]] = gi
        c = 0
        while forbidden[c] == gi:
            c += 1
        color[gi] = c
        start = stop
    return color


def color_cells(cells, n_nodes, active, n_threads):
    """Split the ``active`` cells into colours whose cells share no node with another *chunk* of the colour.

    Cells are cut into contiguous chunks in their stored order (which keeps neighbouring cells, and so
    the matrix rows they touch, close in memory), and the chunks are coloured greedily; if the cell order
    is too scattered for that to leave parallel work, single cells are coloured instead.
    Returns ``(color_ptr, chunk_ptr, order)``: colour c holds chunks ``color_ptr[c]:color_ptr[c+1]``,
    chunk j holds cells ``order[chunk_ptr[j]:chunk_ptr[j+1]]``.
    """
    cells = np.ascontiguousarray(cells, dtype=np.int64)
    idx = np.flatnonzero(active)
    for n_chunks in (32 * n_threads, idx.size):
        n_chunks = max(1, min(n_chunks, idx.size))
        group = np.full(cells.shape[0], -1, np.int64)
        group[idx] = np.arange(idx.size) * n_chunks // max(idx.size, 1)
        color = _color_groups(cells[idx], n_nodes, group[idx], n_chunks) if idx.size else np.zeros(0, np.int64)
        n_colors = int(color.max()) + 1 if color.size else 0
        if n_colors <= max(2, n_chunks // (4 * n_threads)):
            break
    chunk_order = np.argsort(color, kind="stable")
    color_ptr = np.searchsorted(color[chunk_order], np.arange(n_colors + 1))
    sizes = np.bincount(group[idx], minlength=n_chunks)[chunk_order]
    chunk_ptr = np.concatenate([[0], np.cumsum(sizes)])
    starts = np.concatenate([[0], np.cumsum(np.bincount(group[idx], minlength=n_chunks))])
    order = np.concatenate([idx[starts[c]:starts[c + 1]] for c in chunk_order]) if idx.size else idx
    return color_ptr.astype(np.int64), chunk_ptr.astype(np.int64), order.astype(np.int64)


@njit(cache=True)
def _find(indices, lo, hi, col):
    """Position of ``col`` in the sorted slice ``indices[lo:hi]`` (binary search)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < col:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _scatter(K, blocks, nblk, indptr, indices, free, g, data, rhs):
    """Add a matrix ``K (3 nblk, 3 nblk)`` over ``blocks`` into BSR ``data`` and move prescribed columns to ``rhs``."""
    for bi in range(nblk):
        ri = blocks[bi]
        lo, hi = indptr[ri], indptr[ri + 1]
        for bj in range(nblk):
            cj = blocks[bj]
            pos = _find(indices, lo, hi, cj)
            for i in range(3):
                gi = 3 * ri + i
                if not free[gi]:
                    continue
                for j in range(3):
                    gj = 3 * cj + j
                    v = K[3 * bi + i, 3 * bj + j]
                    if free[gj]:
                        data[pos, i, j] += v
                    else:
                        rhs[gi] -= v * g[gj]


@njit(cache=True)
def _scatter_free(K, blocks, nblk, indptr, indices, data):
    """:func:`_scatter` for a cell whose DOFs are all free."""
    for bi in range(nblk):
        ri = blocks[bi]
        lo, hi = indptr[ri], indptr[ri + 1]
        for bj in range(nblk):
            pos = _find(indices, lo, hi, blocks[bj])
            for i in range(3):
                for j in range(3):
                    data[pos, i, j] += K[3 * bi + i, 3 * bj + j]


@threaded
def assemble(points, cells, C, mat, tables, form, ref, node_plate, centers, indptr, indices,
             color_ptr, chunk_ptr, order, tied_cells, free, g, data, rhs, min_det):
    """Assemble the stiffness into BSR ``data (nnzb, 3, 3)`` and the prescribed-DOF terms into ``rhs``.

    points (n, 3) mm; cells (m, k); C (nmat, 6, 6) MPa with ``mat (m,)`` the row of each cell;
    ``tables = (dN, w, dN0, dM)`` the element tables (:mod:`.kernels`); form (m,) int64 formulation
    flags per cell (:data:`.kernels.MEAN_DILATATION`, :data:`.kernels.MODES`); ``ref`` the shared reference
    stiffnesses of :func:`reference_stiffness` (empty arrays: every cell integrated); node_plate (n,); centers (np, 3) mm;
    the chunks of cells of each colour (``color_ptr``, ``chunk_ptr``, ``order`` from :func:`color_cells`)
    are assembled in parallel, ``tied_cells`` (cells touching a plate) serially afterwards, as one chunk of a
    last colour. Each chunk's cells are added one after the other with one set of scratch arrays, each cell
    straight into its slots (through the plate map if it touches a plate). The per-cell work is written
    out here rather than in a function of its own: numba compiles again, into every caller, the machine
    code of the functions a kernel calls, so each level of calls cost about 2.5 s of the first run's
    compilation (benchmarks/README.md, "First run of the README main job: fewer levels of kernels").
    ``free``/``g`` (N,) flag free DOFs and hold prescribed values.
    Writes ``min_det (m,)``, the smallest Jacobian determinant of each cell.
    """
    k = cells.shape[1]
    q = tables[0].shape[0]
    n = k + tables[3].shape[1]  # nodes + internal modes
    n_nodes = points.shape[0]
    K_ref, group, scale, ref_det = ref
    n_colors = color_ptr.shape[0] - 1
    for c in range(n_colors + 1):
        last = c == n_colors
        lo = 0 if last else color_ptr[c]
        hi = 1 if last else color_ptr[c + 1]
        for j in prange(lo, hi):
            cell_list = tied_cells if last else order[chunk_ptr[j]:chunk_ptr[j + 1]]
            s_xe = np.empty((k, 3))
            s_grad = np.empty((q, n, 3))
            s_det = np.empty(q)
            s_gbar = np.empty((k, 3))
            s_CB = np.empty((6, 3 * n))
            s_Ke = np.empty((3 * n, 3 * n))
            s_blocks = np.empty(2 * k, np.int64)
            for e in cell_list:
                # the stiffness of cell e in s_Ke[:3k, :3k] (condensed if it has internal modes): integrated,
                # or with a non-empty ``ref`` the reference stiffness scale[e] * K_ref[group[e]]
                if group.shape[0]:
                    Kg, s = K_ref[group[e]], scale[e]
                    for r in range(3 * k):
                        for cc in range(3 * k):
                            s_Ke[r, cc] = s * Kg[r, cc]
                    min_det[e] = ref_det[group[e]]
                else:
                    for a in range(k):
                        for d in range(3):
                            s_xe[a, d] = points[cells[e, a], d]
                    min_det[e] = element_stiffness(s_xe, tables, C[mat[e]], form[e], s_grad, s_det, s_gbar, s_CB,
                                                   s_Ke)
                tied = False
                for a in range(k):
                    if node_plate[cells[e, a]] >= 0:
                        tied = True
                if not tied:
                    all_free = True
                    for a in range(k):
                        s_blocks[a] = cells[e, a]
                        for d in range(3):
                            if not free[3 * cells[e, a] + d]:
                                all_free = False
                    if all_free:
                        _scatter_free(s_Ke, s_blocks, k, indptr, indices, data)
                    else:
                        _scatter(s_Ke, s_blocks, k, indptr, indices, free, g, data, rhs)
                    continue
                # cell touching a rigid plate: transform to the plate unknowns, Kt = T^T Ke T
                nb = _cell_blocks(cells[e], node_plate, n_nodes, s_blocks)
                T = np.zeros((3 * k, 3 * nb))
                for a in range(k):
                    node = cells[e, a]
                    p = node_plate[node]
                    if p < 0:
                        ib = 0
                        while s_blocks[ib] != node:
                            ib += 1
                        for d in range(3):
                            T[3 * a + d, 3 * ib + d] = 1.0
                    else:
                        it = 0
                        while s_blocks[it] != n_nodes + 2 * p:
                            it += 1
                        ir = 0
                        while s_blocks[ir] != n_nodes + 2 * p + 1:
                            ir += 1
                        r0 = points[node, 0] - centers[p, 0]
                        r1 = points[node, 1] - centers[p, 1]
                        r2 = points[node, 2] - centers[p, 2]
                        for d in range(3):
                            T[3 * a + d, 3 * it + d] = 1.0
                        # theta x r = -[r]x theta
                        T[3 * a + 0, 3 * ir + 1] = r2
                        T[3 * a + 0, 3 * ir + 2] = -r1
                        T[3 * a + 1, 3 * ir + 0] = -r2
                        T[3 * a + 1, 3 * ir + 2] = r0
                        T[3 * a + 2, 3 * ir + 0] = r1
                        T[3 * a + 2, 3 * ir + 1] = -r0
                Kt = np.ascontiguousarray(T.T) @ (np.ascontiguousarray(s_Ke[:3 * k, :3 * k]) @ T)
                _scatter(Kt, s_blocks, nb, indptr, indices, free, g, data, rhs)


@njit(cache=True)
def _all_translates(points, cells, tol):
    """True if every cell's node offsets from its first node equal those of cell 0 within ``tol`` (mm).
    Serial: it stops at the first cell that differs (the second cell of an anatomical mesh)."""
    m, k = cells.shape
    for e in range(m):
        for a in range(1, k):
            for d in range(3):
                ref = points[cells[0, a], d] - points[cells[0, 0], d]
                if abs(points[cells[e, a], d] - points[cells[e, 0], d] - ref) > tol:
                    return False
    return True


@threaded
def _reference_matrices(xe, tables, C_shape, codes, k_ref, det_ref):
    """Element stiffness of the cell ``xe`` for each elasticity shape ``C_shape (g, 6, 6)`` and formulation
    ``codes (g,)`` into ``k_ref (g, 3k, 3k)``; smallest Jacobian determinants into ``det_ref (g,)``."""
    k = xe.shape[0]
    q = tables[0].shape[0]
    n = k + tables[3].shape[1]
    for i in prange(C_shape.shape[0]):
        grad = np.empty((q, n, 3))
        det = np.empty(q)
        gbar = np.empty((k, 3))
        CB = np.empty((6, 3 * n))
        Ke = np.empty((3 * n, 3 * n))
        det_ref[i] = element_stiffness(xe, tables, C_shape[i], codes[i], grad, det, gbar, CB, Ke)
        k_ref[i] = Ke[:3 * k, :3 * k]


def no_reference(k):
    """The empty ``ref`` argument of :func:`assemble`: every cell integrated (cells of ``k`` nodes)."""
    return (np.zeros((0, 3 * k, 3 * k)), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


def reference_stiffness(points, cells, C, mat, form, tables):
    """Shared reference stiffnesses for a mesh of identical cells, or the empty set when the cells differ.

    Returns ``(K_ref (g, 3k, 3k), group (m,), scale (m,), min_det (g,))`` with the stiffness of cell ``e``
    equal to ``scale[e] * K_ref[group[e]]`` (N/mm); ``C (nmat, 6, 6)``, ``mat (m,)``, ``form (m,)`` as in
    :func:`assemble`. The cells qualify when each is a translate of cell 0 within
    :data:`TRANSLATE_RTOL` of its size.
    """
    m, k = cells.shape
    if m == 0:
        return no_reference(k)
    x0 = points[cells[0]]
    size = float(np.ptp(x0, axis=0).max())
    if not (size > 0 and _all_translates(points, cells, TRANSLATE_RTOL * size)):
        return no_reference(k)
    s = np.einsum("kii->k", C[:, :3, :3]) / 3.0
    shape = np.ascontiguousarray(np.round(C / s[:, None, None], SHAPE_DECIMALS).reshape(len(C), 36)) + 0.0
    _, shape_id = np.unique(shape.view(np.dtype((np.void, 36 * 8))).ravel(), return_inverse=True)   # -0.0 -> 0.0
    key = shape_id.ravel()[mat] * (int(form.max()) + 1) + form
    uniq, first, group = np.unique(key, return_index=True, return_inverse=True)
    C_shape = np.ascontiguousarray(C[mat[first]] / s[mat[first]][:, None, None])
    k_ref = np.empty((uniq.size, 3 * k, 3 * k))
    det_ref = np.empty(uniq.size)
    _reference_matrices(np.ascontiguousarray(x0), tables, C_shape, np.ascontiguousarray(form[first]), k_ref,
                        det_ref)
    return k_ref, group.ravel().astype(np.int64), np.ascontiguousarray(s[mat]), det_ref
