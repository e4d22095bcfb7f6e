"""Tests of vertebrafe.mesh.pillow: one layer of hexahedra along a cell set's boundary, guarded smoothing."""
import numpy as np

from vertebrafe.elements import HEX8, HEX8_FACES
from vertebrafe.mesh import box
from vertebrafe.mesh.pillow import boundary_quads, clean_set, edge_rings, pillow, relax
from vertebrafe.mesh.quality import cell_quality, cell_volumes


def _faces_on(cells, quads):
    """Per cell, how many of its faces are among ``quads``."""
    key = {tuple(sorted(q)) for q in quads.tolist()}
    return np.array([sum(tuple(sorted(c[f])) in key for f in HEX8_FACES) for c in cells])


def _inner_cube():
    m = box((1.0, 1.0, 1.0), (4, 4, 4))
    centre = m.points[m.cells].mean(axis=1)
    sel = np.all(np.abs(centre - 0.5) < 0.25, axis=1)            # the inner 2 x 2 x 2 cells
    return m, sel


def test_a_cubes_pillow_layer_on_a_box_mesh():
    m, sel = _inner_cube()
    quads, owner = boundary_quads(m.cells, sel)
    assert quads.shape == (24, 4) and sel[owner].all()
    # outward: the quads' normals point away from the cube's centre
    p = m.points
    nrm = np.cross(p[quads[:, 2]] - p[quads[:, 0]], p[quads[:, 3]] - p[quads[:, 1]])
    assert np.all(np.einsum("fi,fi->f", nrm, p[quads].mean(axis=1) - 0.5) > 0)
    assert _faces_on(m.cells[sel], quads).max() == 3                 # the cube's corner cells: three faces
    pts, cells, nodes, own = pillow(p, m.cells, sel, shrink=0.25)
    assert cells.shape[0] == m.n_cells + quads.shape[0]            # old + one per boundary quad
    assert nodes.size == 26 and pts.shape[0] == p.shape[0] + 26     # the 3 x 3 x 3 nodes of the cube less its centre
    assert np.array_equal(own, owner)
    vol = cell_volumes(pts, cells, HEX8)
    assert np.all(vol > 0) and np.isclose(vol.sum(), 1.0)           # the union keeps its volume
    assert np.isclose(vol[np.concatenate([sel, np.ones(24, bool)])].sum(), 0.125)   # the cube too
    assert cell_quality(pts, cells, HEX8).min_jacobian.min() > 0
    # the set's old boundary is the layer's top faces: one per layer cell, none on the set's cells
    assert np.array_equal(_faces_on(cells[m.n_cells:], quads), np.ones(24, int))
    assert _faces_on(cells[:m.n_cells][sel], quads).max() == 0
    assert _faces_on(cells[:m.n_cells][~sel], quads).max() == 1     # the outside still holds the cube's faces
    # both sides: pillowing the complement leaves every cell that touches the old boundary a layer cell
    inc = np.concatenate([sel, np.ones(24, bool)])
    pts2, cells2, nodes2, _ = pillow(pts, cells, ~inc, shrink=0.25)
    assert np.array_equal(nodes2, nodes) and cells2.shape[0] == cells.shape[0] + 24
    vol2 = cell_volumes(pts2, cells2, HEX8)
    assert np.all(vol2 > 0) and np.isclose(vol2.sum(), 1.0)
    touching = _faces_on(cells2, quads)
    assert touching.sum() == 48 and touching.max() == 1


def test_flat_layer_without_shrink_and_a_set_on_the_mesh_boundary():
    m = box((1.0, 1.0, 1.0), (4, 4, 4))
    centre = m.points[m.cells].mean(axis=1)
    sel = np.all(centre < 0.5, axis=1)                               # a corner cube: three faces on the sides
    quads, _ = boundary_quads(m.cells, sel)
    assert quads.shape[0] == 12                                      # the sides' faces are not pillowed
    pts, cells, nodes, _ = pillow(m.points, m.cells, sel, shrink=0.0)
    assert cells.shape[0] == m.n_cells + 12
    assert np.allclose(pts[m.points.shape[0]:], m.points[nodes])    # copies where their nodes are
    vol = cell_volumes(pts, cells, HEX8)
    assert np.allclose(vol[m.n_cells:], 0.0) and np.isclose(vol.sum(), 1.0)


def test_pillowed_ball_projected_onto_a_sphere_has_no_folded_cell():
    m = box((2.0, 2.0, 2.0), (10, 10, 10), origin=(-1.0, -1.0, -1.0))
    h, R = 0.2, 0.62
    inc = np.linalg.norm(m.points[m.cells].mean(axis=1), axis=1) < R
    p1, c1, surf, _ = pillow(m.points, m.cells, inc, shrink=0.0)
    inc1 = np.concatenate([inc, np.ones(c1.shape[0] - m.n_cells, bool)])
    p, cells, surf2, _ = pillow(p1, c1, ~inc1, shrink=0.0)
    assert np.array_equal(surf, surf2)
    n0 = m.points.shape[0]
    r0 = np.linalg.norm(m.points[surf], axis=1)
    u = m.points[surf] / r0[:, None]
    p[surf] = R * u
    p[n0 + np.arange(surf.size)] = (np.minimum(r0, R) - 0.3 * h)[:, None] * u
    p[p1.shape[0] + np.arange(surf.size)] = (np.maximum(r0, R) + 0.3 * h)[:, None] * u
    q = cell_quality(p, cells, HEX8)
    assert q.min_jacobian.min() > 0
    assert np.allclose(np.linalg.norm(p[surf], axis=1), R)
    # an inscribed polyhedron of bilinear quads: close to the ball's volume, below it
    v = cell_volumes(p, cells, HEX8)[np.concatenate([inc1, np.zeros(cells.shape[0] - c1.shape[0], bool)])].sum()
    assert 0.95 < v / (4 / 3 * np.pi * R ** 3) < 1.0
    # the guarded smoothing keeps every cell valid and does not lower the worst scaled Jacobian
    lo = np.isclose(np.abs(p), 1.0).any(axis=1)
    free = np.ones(p.shape[0], bool)
    free[surf] = False
    free &= ~lo
    p2, s2 = relax(p, cells, free, passes=3)
    assert np.allclose(p2[surf], p[surf]) and np.allclose(p2[lo], p[lo])
    assert s2.min() >= min(q.scaled_jacobian.min(), 0.2) - 1e-12
    assert cell_quality(p2, cells, HEX8).min_jacobian.min() > 0


def test_relax_moves_a_displaced_node_back_and_holds_the_rest():
    m = box((1.0, 1.0, 1.0), (2, 2, 2))
    p = m.points.copy()
    mid = int(np.flatnonzero(np.all(np.isclose(p, 0.5), axis=1))[0])
    p[mid] += [0.1, -0.05, 0.08]
    free = np.zeros(p.shape[0], bool)
    free[mid] = True
    p2, s = relax(p, m.cells, free, passes=1)
    assert np.allclose(p2[mid], 0.5) and np.allclose(np.delete(p2, mid, 0), np.delete(p, mid, 0))
    assert np.allclose(s, 1.0)
    # held components: only y may move
    p3, _ = relax(p, m.cells, np.repeat(free[:, None], 3, axis=1) & np.array([False, True, False]), passes=1)
    assert np.allclose(p3[mid], [0.6, 0.5, 0.58])


def test_clean_set_removes_a_protrusion_and_fills_a_notch():
    m = box((1.0, 1.0, 1.0), (5, 5, 5))
    c = m.points[m.cells].mean(axis=1)
    cube = np.all(np.abs(c - 0.5) < 0.25, axis=1)                     # the inner 3 x 3 x 3 cells
    assert cube.sum() == 27 and np.array_equal(clean_set(m.cells, cube, np.ones(m.n_cells, bool)), cube)
    bump = cube | np.all(np.abs(c - [0.5, 0.5, 0.9]) < 0.05, axis=1)      # a cell on top: four sides out
    assert bump.sum() == 28
    assert np.array_equal(clean_set(m.cells, bump, np.ones(m.n_cells, bool)), cube)
    notch = cube & ~np.all(np.abs(c - [0.5, 0.5, 0.7]) < 0.05, axis=1)   # the top face's middle cell missing
    assert notch.sum() == 26
    assert np.array_equal(clean_set(m.cells, notch, np.ones(m.n_cells, bool)), cube)
    # no cell may join: the notch's neighbours have two opposite faces out, and the top layer goes cell by cell
    assert np.array_equal(clean_set(m.cells, notch, np.zeros(m.n_cells, bool)), cube & (c[:, 2] < 0.6))
    # a set on the mesh's boundary: the boundary faces do not count
    corner = np.all(c < 0.4, axis=1)                                  # 2 x 2 x 2 in a corner
    assert np.array_equal(clean_set(m.cells, corner, np.ones(m.n_cells, bool)), corner)


def test_edge_rings_grow_one_edge_per_ring():
    """On a 4 x 4 x 4 box grid, the rings of the corner node are the nodes within that many grid steps along
    edges (a Manhattan ball)."""
    m = box((4.0, 4.0, 4.0), (4, 4, 4))
    seed = np.all(np.isclose(m.points, 0.0), axis=1)
    for rings in range(4):
        near = edge_rings(m.cells, seed, rings)
        np.testing.assert_array_equal(near, np.rint(m.points).sum(axis=1) <= rings)


def test_points_go_onto_a_level_set_at_their_closest_point():
    from vertebrafe.mesh.pillow import project_to_level_set

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    x *= (rng.uniform(0.3, 2.0, 200) / np.linalg.norm(x, axis=1))[:, None]

    def sphere(y):                                      # |y| - 1: a distance; its closest point is radial
        r = np.linalg.norm(y, axis=1)
        return r - 1.0, y / r[:, None]

    y, res = project_to_level_set(x, sphere, max_step=0.25)
    assert res.max() < 1e-9 and np.allclose(np.linalg.norm(y, axis=1), 1.0)
    assert np.allclose(y, x / np.linalg.norm(x, axis=1)[:, None])

    def cut_ball(y):                                     # max(|y|^2 - 1, z - 0.5): not a distance, an edge
        g1, g2 = np.einsum("ki,ki->k", y, y) - 1.0, y[:, 2] - 0.5
        return np.maximum(g1, g2), np.where((g1 > g2)[:, None], 2.0 * y, [0.0, 0.0, 1.0])

    y, res = project_to_level_set(x, cut_ball, max_step=0.25)
    assert res.max() < 1e-9
    assert np.all(np.einsum("ki,ki->k", y, y) <= 1.0 + 1e-9) and np.all(y[:, 2] <= 0.5 + 1e-9)


def test_untangle_unfolds_the_cells_around_a_displaced_node():
    from vertebrafe.mesh.pillow import untangle

    m = box((1.0, 1.0, 1.0), (4, 4, 4))
    p = m.points.copy()
    i = int(np.argmin(np.linalg.norm(p - 0.5, axis=1)))           # the centre node
    p[i] += [0.4, 0.3, 0.0]                                        # past its neighbours: cells fold
    q = cell_quality(p, m.cells, HEX8)
    assert (q.min_jacobian <= 0).sum() > 0
    on_boundary = np.any((m.points < 1e-9) | (m.points > 1 - 1e-9), axis=1)
    p2, left = untangle(p, m.cells, ~on_boundary)
    assert left == 0 and cell_quality(p2, m.cells, HEX8).min_jacobian.min() > 0
    assert np.array_equal(p2[on_boundary], p[on_boundary])        # fixed nodes stay
    p3, left = untangle(m.points, m.cells, ~on_boundary)           # nothing folded: nothing moves
    assert left == 0 and np.array_equal(p3, m.points)


def test_untangle_unfolds_a_corner_that_the_gauss_points_miss():
    """The centre node of a 4^3 box moved 0.4 h along the diagonal into one cell, past the plane of its three
    neighbours in that cell: that cell's corner Jacobian is negative (scaled -0.36) while every Gauss point's is
    positive. :func:`tangled` counts it, and untangle moves the free nodes until no corner is <= 0."""
    from vertebrafe.mesh.pillow import tangled, untangle

    m = box((1.0, 1.0, 1.0), (4, 4, 4))
    p = m.points.copy()
    i = int(np.argmin(np.linalg.norm(p - 0.5, axis=1)))
    p[i] += 0.4 * 0.25
    q = cell_quality(p, m.cells, HEX8)
    assert q.min_jacobian.min() > 0 and (q.scaled_jacobian <= 0).sum() == 1
    assert tangled(p, m.cells).sum() == 1
    on_boundary = np.any((m.points < 1e-9) | (m.points > 1 - 1e-9), axis=1)
    p2, left = untangle(p, m.cells, ~on_boundary)
    q2 = cell_quality(p2, m.cells, HEX8)
    assert left == 0 and q2.scaled_jacobian.min() > 0.1 and q2.min_jacobian.min() > 0
    assert np.array_equal(p2[on_boundary], p[on_boundary])
