"""Sparse assembly straight into block-CSR (BSR, 3x3 blocks).

Unknowns are grouped in *blocks* of three DOFs: one block per mesh node (ux, uy, uz) and two per
rigid plate (translation, rotation). A node tied to a plate has no unknowns of its own: the elements
around it see the plate blocks instead, through the exact small-rotation map
``u = t + theta x (x - c)``. Prescribed DOFs are eliminated: their columns move to the right-hand side
and their rows become a decoupled diagonal, so the matrix keeps its 3x3 block structure (which the
AMG preconditioner exploits) and stays symmetric positive definite.

The sparsity pattern is built once from node-cell adjacency; the cells are then coloured so that no two
cells of one colour share a node, and each colour is assembled in parallel, every cell adding its
element matrix straight into its slots. No COO triplets are ever stored.
"""
import numpy as np
from numba import njit, prange

from .kernels import element_stiffness


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
        indices[indptr[b]:indptr[b + 1]] = np.sort(indices[indptr[b]:indptr[b + 1]])
    return indptr, indices


@njit(cache=True)
def color_cells(cells, n_nodes, active):
    """Greedy colouring of the ``active`` cells so that cells of one colour share no node.

    Returns ``(ptr, order)``: the cells of colour c are ``order[ptr[c]:ptr[c+1]]``.
    """
    m, k = cells.shape
    count = np.zeros(n_nodes + 1, np.int64)
    for e in range(m):
        for a in range(k):
            count[cells[e, a] + 1] += 1
    ptr = np.cumsum(count)
    fill = ptr[:-1].copy()
    adj = np.empty(ptr[-1], np.int64)
    for e in range(m):
        for a in range(k):
            adj[fill[cells[e, a]]] = e
            fill[cells[e, a]] += 1
    color = np.full(m, -1, np.int64)
    forbidden = np.full(1024, -1, np.int64)
    n_colors = 0
    for e in range(m):
        if not active[e]:
            continue
        for a in range(k):
            node = cells[e, a]
            for j in range(ptr[node], ptr[node + 1]):
                f = adj[j]
                if color[f] >= 0:
                    forbidden[color[f]] = e
        c = 0
        while forbidden[c] == e:
            c += 1
        color[e] = c
        if c + 1 > n_colors:
            n_colors = c + 1
    cptr = np.zeros(n_colors + 1, np.int64)
    for e in range(m):
        if color[e] >= 0:
            cptr[color[e] + 1] += 1
    cptr = np.cumsum(cptr)
    cfill = cptr[:-1].copy()
    order = np.empty(cptr[-1], np.int64)
    for e in range(m):
        c = color[e]
        if c >= 0:
            order[cfill[c]] = e
            cfill[c] += 1
    return cptr, order


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
def _assemble_cell(e, points, cells, C, mat, dN, w, bbar, node_plate, centers, n_nodes,
                   indptr, indices, free, g, data, rhs, s_xe, s_grad, s_det, s_gbar, s_B, s_DB, s_Ke,
                   s_blocks):
    k = cells.shape[1]
    for a in range(k):
        for d in range(3):
            s_xe[a, d] = points[cells[e, a], d]
    min_det = element_stiffness(s_xe, dN, w, C[mat[e]], bbar[e], s_grad, s_det, s_gbar, s_B, s_DB, s_Ke)
    tied = False
    for a in range(k):
        if node_plate[cells[e, a]] >= 0:
            tied = True
    if not tied:
        for a in range(k):
            s_blocks[a] = cells[e, a]
        _scatter(s_Ke, s_blocks, k, indptr, indices, free, g, data, rhs)
        return min_det
    # cell touching a rigid plate: transform to the plate unknowns, Kt = T^T Ke T
    nb = _cell_blocks(cells[e], node_plate, n_nodes, s_blocks)
    n = 3 * nb
    T = np.zeros((3 * k, n))
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
    Kt = np.ascontiguousarray(T.T) @ (s_Ke @ T)
    _scatter(Kt, s_blocks, nb, indptr, indices, free, g, data, rhs)
    return min_det


@njit(parallel=True, cache=True)
def assemble(points, cells, C, mat, dN, w, bbar, node_plate, centers, indptr, indices,
             color_ptr, color_order, tied_cells, free, g, data, rhs, min_det, n_threads):
    """Assemble the stiffness into BSR ``data (nnzb, 3, 3)`` and the prescribed-DOF terms into ``rhs``.

    points (n, 3) mm; cells (m, k); C (nmat, 6, 6) MPa with ``mat (m,)`` the row of each cell;
    dN (q, k, 3), w (q,) quadrature tables; bbar (m,) bool; node_plate (n,); centers (np, 3) mm;
    cells listed by colour in ``color_ptr``/``color_order`` are assembled in parallel, ``tied_cells``
    (cells touching a plate) serially. ``free``/``g`` (N,) flag free DOFs and hold prescribed values.
    Writes ``min_det (m,)``, the smallest Jacobian determinant of each cell; ``n_threads`` sets the
    number of parallel chunks per colour (numba.get_num_threads()).
    """
    n_nodes = points.shape[0]
    k = cells.shape[1]
    q = dN.shape[0]
    for c in range(color_ptr.shape[0] - 1):
        start, stop = color_ptr[c], color_ptr[c + 1]
        n_chunks = min(4 * n_threads, stop - start)
        for t in prange(n_chunks):
            s_xe = np.empty((k, 3))
            s_grad = np.empty((q, k, 3))
            s_det = np.empty(q)
            s_gbar = np.empty((k, 3))
            s_B = np.empty((6, 3 * k))
            s_DB = np.empty((6, 3 * k))
            s_Ke = np.empty((3 * k, 3 * k))
            s_blocks = np.empty(2 * k, np.int64)
            lo = start + (stop - start) * t // n_chunks
            hi = start + (stop - start) * (t + 1) // n_chunks
            for i in range(lo, hi):
                e = color_order[i]
                min_det[e] = _assemble_cell(e, points, cells, C, mat, dN, w, bbar, node_plate, centers,
                                            n_nodes, indptr, indices, free, g, data, rhs, s_xe, s_grad,
                                            s_det, s_gbar, s_B, s_DB, s_Ke, s_blocks)
    s_xe = np.empty((k, 3))
    s_grad = np.empty((q, k, 3))
    s_det = np.empty(q)
    s_gbar = np.empty((k, 3))
    s_B = np.empty((6, 3 * k))
    s_DB = np.empty((6, 3 * k))
    s_Ke = np.empty((3 * k, 3 * k))
    s_blocks = np.empty(2 * k, np.int64)
    for i in range(tied_cells.shape[0]):
        e = tied_cells[i]
        min_det[e] = _assemble_cell(e, points, cells, C, mat, dN, w, bbar, node_plate, centers,
                                    n_nodes, indptr, indices, free, g, data, rhs, s_xe, s_grad,
                                    s_det, s_gbar, s_B, s_DB, s_Ke, s_blocks)
