"""Tests of vertebrafe.mesh: validation, geometry, quality, sets, extraction and file round trips."""
import warnings

import meshio
import numpy as np
import pytest

from vertebrafe.elements import HEX8_FACES
from vertebrafe.errors import InvertedElementError, MeshError
from vertebrafe.mesh import Mesh, MeshWarning, Quality, box


def grid(shape=(2, 2, 2), lengths=(1.0, 1.0, 1.0)):
    """Independent structured hex grid (points, cells) built with np.meshgrid."""
    nx, ny, nz = shape
    x, y, z = (np.linspace(0.0, L, s + 1) for L, s in zip(lengths, shape))
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
    points = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)
    node = np.arange(points.shape[0]).reshape(nz + 1, ny + 1, nx + 1)
    n0 = node[:-1, :-1, :-1]
    cells = np.stack([n0, node[:-1, :-1, 1:], node[:-1, 1:, 1:], node[:-1, 1:, :-1],
                      node[1:, :-1, :-1], node[1:, :-1, 1:], node[1:, 1:, 1:], node[1:, 1:, :-1]],
                     axis=-1).reshape(-1, 8)
    return points, cells


def distorted(shape=(4, 4, 4), lengths=(1.0, 1.0, 1.0), amount=0.15, seed=0):
    """Grid with interior nodes moved randomly by up to ``amount`` cell sizes (still valid)."""
    points, cells = grid(shape, lengths)
    h = np.asarray(lengths) / np.asarray(shape)
    lo, hi = points.min(axis=0), points.max(axis=0)
    interior = np.all((points > lo + 1e-12) & (points < hi - 1e-12), axis=1)
    rng = np.random.default_rng(seed)
    points = points.copy()
    points[interior] += rng.uniform(-amount, amount, (interior.sum(), 3)) * h
    return points, cells


def face_area_vectors(points, faces):
    """Area-weighted normals (f, 3) and centroids (f, 3) of (possibly warped) quads."""
    p = points[faces]
    # Bilinear quad: exact integral of the normal is half the cross product of the diagonals.
    n = 0.5 * np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1])
    return n, p


def divergence_volume(points, faces):
    """Volume from the divergence theorem, (1/3) * integral of x . n over the boundary.

    Exact for bilinear quads with 2x2 Gauss points on the parametric square.
    """
    g = np.array([-1.0, 1.0]) / np.sqrt(3.0)
    xi, eta = np.meshgrid(g, g, indexing="ij")
    xi, eta = xi.ravel(), eta.ravel()
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    N = 0.25 * (1 + xi[:, None] * corners[:, 0]) * (1 + eta[:, None] * corners[:, 1])      # (4q, 4)
    dNxi = 0.25 * corners[:, 0] * (1 + eta[:, None] * corners[:, 1])
    dNeta = 0.25 * corners[:, 1] * (1 + xi[:, None] * corners[:, 0])
    P = points[faces]                                                    # (f, 4, 3)
    x = np.einsum("qa,fai->fqi", N, P)
    t1 = np.einsum("qa,fai->fqi", dNxi, P)
    t2 = np.einsum("qa,fai->fqi", dNeta, P)
    n = np.cross(t1, t2)                                                 # weight 1 per point
    return np.einsum("fqi,fqi->", x, n) / 3.0


# ------------------------------------------------------------------------- construction


def test_construction_dtypes_and_counts():
    points, cells = grid((3, 2, 1))
    m = Mesh(points.astype(np.float32), cells.astype(np.int32))
    assert m.points.dtype == np.float64 and m.cells.dtype == np.int64
    assert m.n_points == 4 * 3 * 2 and m.n_cells == 6
    assert m.element.n_nodes == 8 and m.cell_type == "hexahedron"
    assert "6 hexahedron cells" in repr(m)


@pytest.mark.parametrize("bad, text", [
    (lambda p, c: (p[:, :2], c), "points"),
    (lambda p, c: (p, c[:, :7]), "cells"),
    (lambda p, c: (p, c.astype(float)), "dtype"),
])
def test_shape_and_dtype_rejected(bad, text):
    points, cells = grid()
    with pytest.raises(MeshError, match=text):
        Mesh(*bad(points, cells))


def test_non_finite_point_rejected():
    points, cells = grid()
    points[5, 1] = np.nan
    with pytest.raises(MeshError, match="non-finite.*point 5"):
        Mesh(points, cells)


def test_index_out_of_range_names_value():
    points, cells = grid()
    cells[3, 2] = 12345
    with pytest.raises(MeshError, match="12345") as exc:
        Mesh(points, cells)
    assert f"< {len(points)}" in str(exc.value) and "[3]" in str(exc.value)
    cells[3, 2] = -7
    with pytest.raises(MeshError, match="-7"):
        Mesh(points, cells)


def test_duplicate_cells_rejected_any_order():
    points, cells = grid()
    dup = cells[5][[3, 1, 7, 0, 2, 6, 4, 5]]          # same nodes, other order
    with pytest.raises(MeshError, match="duplicate") as exc:
        Mesh(points, np.vstack([cells, dup]))
    assert "[5, 8]" in str(exc.value)


def test_unused_node_warning_once():
    points, cells = grid()
    points = np.vstack([points, [[5.0, 5.0, 5.0], [6.0, 6.0, 6.0]]])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m = Mesh(points, cells)
    msgs = [str(x.message) for x in w if issubclass(x.category, MeshWarning)]
    assert len(msgs) == 1 and "2 unused nodes" in msgs[0]
    np.testing.assert_array_equal(m.unused_nodes(), [27, 28])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Mesh(*grid()).unused_nodes().size == 0


def test_cell_data_and_tag_validation():
    points, cells = grid()
    with pytest.raises(MeshError, match="cell_data\\['region'\\].*shape"):
        Mesh(points, cells, cell_data={"region": np.ones(7, int)})
    with pytest.raises(MeshError, match="values \\[3\\].*no name"):
        Mesh(points, cells, cell_data={"region": np.array([1, 1, 2, 2, 3, 1, 1, 1])},
             tag_names={"region": {1: "cortex", 2: "cancellous"}})
    with pytest.raises(MeshError, match="unique"):
        Mesh(points, cells, cell_data={"region": np.ones(8, int)},
             tag_names={"region": {1: "cortex", 2: "cortex"}})
    with pytest.raises(MeshError, match="no cell_data"):
        Mesh(points, cells, tag_names={"level": {1: "L1"}})
    m = Mesh(points, cells, cell_data={"density": np.linspace(0.1, 0.3, 8), "fibre": np.ones((8, 3))})
    assert m.cell_data["density"].dtype == np.float64 and m.cell_data["fibre"].shape == (8, 3)


def test_node_and_face_set_validation():
    points, cells = grid()
    with pytest.raises(MeshError, match="node index 99"):
        Mesh(points, cells, node_sets={"top": [1, 99]})
    with pytest.raises(MeshError, match="shape"):
        Mesh(points, cells, face_sets={"top": np.arange(6).reshape(2, 3)})
    with pytest.raises(MeshError, match="node index 27"):
        Mesh(points, cells, face_sets={"top": [[0, 1, 2, 27]]})
    mask = points[:, 2] > 0.9
    m = Mesh(points, cells, node_sets={"top": mask, "some": [5, 3, 3, 1]})
    np.testing.assert_array_equal(m.node_sets["top"], np.flatnonzero(mask))
    np.testing.assert_array_equal(m.node_sets["some"], [1, 3, 5])
    m.add_node_set("bottom", points[:, 2] < 1e-9)
    assert m.node_sets["bottom"].size == 9


def test_unknown_cell_type():
    with pytest.raises(MeshError, match="cell_type"):
        Mesh(*grid(), cell_type="wedge15")


# ------------------------------------------------------------------------- geometry and quality


@pytest.mark.parametrize("shape, lengths", [((1, 1, 1), (1.0, 1.0, 1.0)),
                                            ((3, 4, 5), (12.0, 7.5, 3.3))])
def test_volumes_of_box_exact(shape, lengths):
    m = box(lengths, shape, origin=(-3.0, 1.0, 20.0))
    vol = m.cell_volumes()
    exact = np.prod(lengths) / np.prod(shape)
    np.testing.assert_allclose(vol, exact, rtol=1e-12)
    np.testing.assert_allclose(vol.sum(), np.prod(lengths), rtol=1e-12)
    q = m.quality()
    np.testing.assert_allclose(q.scaled_jacobian, 1.0, rtol=1e-12)
    np.testing.assert_allclose(q.min_jacobian, exact / 8.0, rtol=1e-12)


def test_distorted_volume_sum_and_quality():
    lengths = (2.0, 3.0, 5.0)
    points, cells = distorted((5, 4, 3), lengths, amount=0.2, seed=1)
    m = Mesh(points, cells)
    vol = m.cell_volumes()
    assert vol.min() > 0
    # interior nodes moved, boundary fixed: the total volume is unchanged
    np.testing.assert_allclose(vol.sum(), np.prod(lengths), rtol=1e-12)
    q = m.check_inverted()
    assert isinstance(q, Quality)
    touched = q.scaled_jacobian < 1.0 - 1e-9
    assert touched.mean() > 0.9
    assert np.all(q.scaled_jacobian > 0) and np.all(q.scaled_jacobian <= 1.0 + 1e-12)


def test_parallelepiped_jacobian_and_scaled_jacobian():
    # A sheared unit cube: x' = x + s*z. det J is unchanged, scaled Jacobian is cos of the shear angle.
    s = 0.5
    m = box()
    m.points[:, 0] += s * m.points[:, 2]
    q = m.quality()
    np.testing.assert_allclose(m.cell_volumes(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(q.min_jacobian, 1.0 / 8.0, rtol=1e-12)
    np.testing.assert_allclose(q.scaled_jacobian, 1.0 / np.sqrt(1 + s * s), rtol=1e-12)


def test_trilinear_volume_against_divergence_theorem():
    points, cells = distorted((3, 3, 3), amount=0.3, seed=4)
    # also warp a boundary node so that faces are non-planar
    points[0] += [0.05, -0.03, 0.04]
    m = Mesh(points, cells)
    vol = m.cell_volumes()
    for c in range(m.n_cells):      # test code, 27 cells: per cell check
        faces = m.cells[c][HEX8_FACES]
        np.testing.assert_allclose(vol[c], divergence_volume(m.points, faces), rtol=1e-12)


def test_flipped_cell_detected_and_named():
    points, cells = distorted((3, 3, 3), amount=0.1, seed=2)
    cells[13] = cells[13][[4, 5, 6, 7, 0, 1, 2, 3]]    # top and bottom swapped: inside out
    m = Mesh(points, cells)
    q = m.quality()
    assert q.min_jacobian[13] < 0 and q.scaled_jacobian[13] < 0
    np.testing.assert_array_equal(q.inverted, [13])
    with pytest.raises(InvertedElementError, match="1 of 27 cells") as exc:
        m.check_inverted()
    assert exc.value.cells == [13]
    assert "[13]" in str(exc.value)
    assert m.cell_volumes()[13] < 0


def test_many_inverted_cells_count_and_first_few():
    m = box(shape=(4, 4, 4))
    bad = np.arange(0, 64, 3)
    m.cells[bad] = m.cells[bad][:, [4, 5, 6, 7, 0, 1, 2, 3]]
    with pytest.raises(InvertedElementError, match=f"{bad.size} of 64") as exc:
        m.check_inverted()
    assert exc.value.cells == bad.tolist()
    assert "..." in str(exc.value)


def test_cell_centers():
    m = box((2.0, 4.0, 6.0), (1, 2, 3), origin=(1.0, 1.0, 1.0))
    c = m.cell_centers()
    assert c.shape == (6, 3)
    np.testing.assert_allclose(c[0], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(c[-1], [2.0, 4.0, 6.0])


# ------------------------------------------------------------------------- box and boundary


def test_box_matches_independent_grid():
    points, cells = grid((3, 2, 4), (3.0, 2.0, 4.0))
    m = box((3.0, 2.0, 4.0), (3, 2, 4))
    np.testing.assert_allclose(m.points, points, atol=1e-14)
    np.testing.assert_array_equal(m.cells, cells)


def test_box_sides():
    lengths, shape, origin = (2.0, 3.0, 4.0), (2, 3, 4), (-1.0, 0.5, 10.0)
    m = box(lengths, shape, origin)
    lo, hi = np.array(origin), np.array(origin) + lengths
    for d, ax in enumerate("xyz"):
        for label, value, sign in (("min", lo[d], -1.0), ("max", hi[d], 1.0)):
            name = ax + label
            nodes = m.node_sets[name]
            np.testing.assert_array_equal(nodes, np.flatnonzero(np.isclose(m.points[:, d], value)))
            faces = m.face_sets[name]
            others = [s for i, s in enumerate(shape) if i != d]
            assert faces.shape == (others[0] * others[1], 4)
            assert np.all(np.isin(faces, nodes))
            n, _ = face_area_vectors(m.points, faces)
            expected = np.zeros(3)
            expected[d] = sign * np.prod([L for i, L in enumerate(lengths) if i != d])
            np.testing.assert_allclose(n.sum(axis=0), expected, atol=1e-12)
    with pytest.raises(MeshError, match="lengths"):
        box((1.0, -1.0, 1.0))
    with pytest.raises(MeshError, match="shape"):
        box(shape=(2, 0, 2))


@pytest.mark.parametrize("n", [1, 2, 5])
def test_boundary_faces_count_and_outward(n):
    m = box((1.0, 2.0, 3.0), (n, n, n))
    faces = m.boundary_faces()
    assert faces.shape == (6 * n * n, 4)
    np.testing.assert_allclose(divergence_volume(m.points, faces), 6.0, rtol=1e-12)
    # each face individually outward: normal points away from the box centre
    nvec, p = face_area_vectors(m.points, faces)
    assert np.all(np.einsum("fi,fi->f", nvec, p.mean(axis=1) - [0.5, 1.0, 1.5]) > 0)
    # the union of the six face sets is the boundary
    sets = np.vstack([m.face_sets[k] for k in ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")])
    key = lambda f: {tuple(sorted(r)) for r in f.tolist()}
    assert key(sets) == key(faces)


def test_boundary_faces_of_distorted_mesh_divergence_theorem():
    points, cells = distorted((4, 3, 5), (1.0, 1.5, 2.0), amount=0.25, seed=3)
    # bend the whole mesh so the boundary is curved and faces are warped
    points[:, 2] += 0.2 * np.sin(points[:, 0]) * points[:, 1]
    m = Mesh(points, cells)
    faces, owner, local = m.boundary_faces(return_index=True)
    assert faces.shape[0] == 2 * (4 * 3 + 3 * 5 + 4 * 5)
    np.testing.assert_array_equal(faces, m.cells[owner[:, None], HEX8_FACES[local]])
    np.testing.assert_allclose(divergence_volume(m.points, faces), m.cell_volumes().sum(), rtol=1e-12)


# ------------------------------------------------------------------------- tags, sets, extraction


def tagged_box():
    m = box((10.0, 10.0, 6.0), (4, 4, 3))
    centers = m.cell_centers()
    r = np.hypot(centers[:, 0] - 5.0, centers[:, 1] - 5.0)
    region = np.where(r < 3.0, 2, 1)
    region[centers[:, 2] > 4.0] = 3
    level = np.where(centers[:, 2] < 3.0, 21, 22)
    m.set_cell_data("region", region, {1: "cortex", 2: "cancellous", 3: "endplate"})
    m.set_cell_data("level", level, {21: "L1", 22: "L2"})
    m.set_cell_data("density", np.linspace(0.1, 0.5, m.n_cells))
    m.set_cell_data("fibre", np.tile([0.0, 0.0, 1.0], (m.n_cells, 1)))
    return m


def test_cells_in_and_names():
    m = tagged_box()
    assert m.names("region") == ["cortex", "cancellous", "endplate"]
    mask = m.cells_in("region", ["cortex", "endplate"])
    np.testing.assert_array_equal(mask, m.cell_data["region"] != 2)
    np.testing.assert_array_equal(m.cells_in("level", "L2"), m.cell_data["level"] == 22)
    with pytest.raises(MeshError, match="known names.*cortex"):
        m.cells_in("region", ["cortx"])
    with pytest.raises(MeshError, match="known tags"):
        m.cells_in("material", ["x"])
    with pytest.raises(MeshError, match="no name table"):
        m.cells_in("density", ["x"])
    with pytest.raises(MeshError, match="values \\[1\\]"):
        m.set_cell_data("region", m.cell_data["region"], {2: "a", 3: "b"})
    assert m.names("region") == ["cortex", "cancellous", "endplate"]     # unchanged on failure
    assert "region ['cortex', 'cancellous', 'endplate']" in repr(m)


def test_nodes_of():
    m = box(shape=(2, 1, 1))
    np.testing.assert_array_equal(m.nodes_of([0]), np.sort(m.cells[0]))
    np.testing.assert_array_equal(m.nodes_of(np.array([True, True])), np.arange(12))


def test_extract_compacts_and_remaps():
    m = tagged_box()
    m.add_node_set("pin", [0, m.n_points - 1])
    sel = m.cells_in("region", "cancellous")
    sub = m.extract(sel)
    assert sub.n_cells == sel.sum() and sub.unused_nodes().size == 0
    # same geometry cell by cell
    np.testing.assert_allclose(sub.points[sub.cells], m.points[m.cells[sel]])
    np.testing.assert_allclose(sub.cell_volumes(), m.cell_volumes()[sel], rtol=1e-14)
    np.testing.assert_array_equal(sub.cell_data["density"], m.cell_data["density"][sel])
    assert sub.tag_names == m.tag_names
    # node sets: exactly the kept nodes of each set, in new numbering
    kept = m.nodes_of(sel)
    for name, nodes in m.node_sets.items():
        old = np.intersect1d(nodes, kept)
        np.testing.assert_allclose(sub.points[sub.node_sets[name]], m.points[old])
    assert sub.node_sets["pin"].size == 0
    # face sets: the zmin faces under cancellous cells, same geometry and orientation
    zmin_old = m.face_sets["zmin"]
    n_expected = np.sum(sel & (m.cell_centers()[:, 2] < 2.0))
    assert sub.face_sets["zmin"].shape == (n_expected, 4)
    assert sub.face_sets["zmax"].shape == (0, 4)
    nv, _ = face_area_vectors(sub.points, sub.face_sets["zmin"])
    assert np.all(nv[:, 2] < 0)
    assert np.all(np.isin(sub.points[sub.face_sets["zmin"]][..., 2], [0.0]))
    assert zmin_old.shape[0] == 16
    # a face whose nodes all survive but which is a face of no kept cell is dropped
    row = box(shape=(3, 1, 1))
    row.add_face_set("front of middle", [row.cells[1][HEX8_FACES[2]]])
    row.add_face_set("left of middle", [row.cells[1][HEX8_FACES[4]]])
    ends = row.extract([0, 2])
    assert ends.face_sets["front of middle"].shape == (0, 4)
    assert ends.face_sets["left of middle"].shape == (1, 4)      # also the xi+ face of cell 0


def test_copy_is_independent():
    m = tagged_box()
    c = m.copy()
    c.points[0] += 1.0
    c.cell_data["region"][0] = 3
    c.node_sets["xmin"][0] = 5
    c.tag_names["region"][1] = "x"
    assert m.points[0, 0] == 0.0 and m.cell_data["region"][0] != 3
    assert m.node_sets["xmin"][0] == 0 and m.tag_names["region"][1] == "cortex"


def test_validate_after_inplace_edit():
    m = box(shape=(2, 2, 2))
    m.cells[0, 0] = 1000
    with pytest.raises(MeshError, match="1000"):
        m.validate()


# ------------------------------------------------------------------------- files


def assert_same(a, b):
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.cells, b.cells)
    assert a.cells.dtype == b.cells.dtype == np.int64
    assert a.cell_type == b.cell_type
    assert sorted(a.cell_data) == sorted(b.cell_data)
    for k in a.cell_data:
        assert a.cell_data[k].dtype == b.cell_data[k].dtype, k
        np.testing.assert_array_equal(a.cell_data[k], b.cell_data[k])
    assert a.tag_names == b.tag_names
    assert sorted(a.node_sets) == sorted(b.node_sets)
    for k in a.node_sets:
        np.testing.assert_array_equal(a.node_sets[k], b.node_sets[k])
    assert sorted(a.face_sets) == sorted(b.face_sets)
    for k in a.face_sets:
        np.testing.assert_array_equal(a.face_sets[k], b.face_sets[k])


def make_rich_mesh():
    points, cells = distorted((3, 2, 2), (3.0, 2.0, 2.0), amount=0.2, seed=7)
    points[:, 2] += 1e-3 * np.pi            # non-round coordinates
    m = Mesh(points, cells)
    m.set_cell_data("region", np.array([1, 2] * 6), {1: "cortex", 2: "cancellous bone = soft"})
    m.set_cell_data("level", np.full(12, -3), {-3: "T12-L1"})
    m.set_cell_data("a=b %41", np.arange(12), {i: f"n{i}=<{i}>" for i in range(12)})
    m.set_cell_data("modulus", np.geomspace(10.0, 17000.0, 12))
    m.set_cell_data("fibre", np.random.default_rng(0).normal(size=(12, 3)))
    m.add_node_set("top", m.points[:, 2] > 2.0)
    m.add_node_set("empty", [])
    m.add_node_set('odd <name> & "quotes"', [0, 2])
    faces, _, _ = m.boundary_faces(return_index=True)
    m.add_face_set("all boundary", faces)
    m.add_face_set("one", faces[3:4][:, ::-1])          # inward on purpose: order kept as given
    m.add_face_set("none", np.zeros((0, 4), int))
    m.add_face_set('odd <name> & "quotes"', faces[:2])
    return m


def test_vtu_round_trip_exact(tmp_path):
    m = make_rich_mesh()
    path = tmp_path / "mesh.vtu"
    m.save(path)
    back = Mesh.load(path)
    assert_same(m, back)
    # meshio reads the same file directly, and the encoding is the documented one
    raw = meshio.read(path)
    assert raw.point_data["nodeset:top"].dtype == np.uint8
    assert raw.field_data["tagname:region=cortex"].tolist() == [1]
    assert raw.field_data["faceset:all boundary"].shape == (m.face_sets["all boundary"].shape[0], 4)


def test_meshio_object_round_trip():
    m = make_rich_mesh()
    assert_same(m, Mesh.from_meshio(m.to_meshio()))


def test_vtk_legacy_keeps_data_but_warns(tmp_path):
    m = make_rich_mesh()
    # the legacy writer refuses spaces in array names
    del m.node_sets['odd <name> & "quotes"']
    del m.cell_data["a=b %41"], m.tag_names["a=b %41"]
    path = tmp_path / "mesh.vtk"
    with pytest.warns(MeshWarning, match="name tables and face sets"):
        m.save(path)
    back = Mesh.load(path)
    np.testing.assert_array_equal(back.points, m.points)
    np.testing.assert_array_equal(back.cells, m.cells)
    for k in m.cell_data:
        np.testing.assert_array_equal(back.cell_data[k], m.cell_data[k])
    for k in m.node_sets:
        np.testing.assert_array_equal(back.node_sets[k], m.node_sets[k])
    assert back.tag_names == {} and back.face_sets == {}


def test_from_meshio_mixed_blocks_and_gmsh_names():
    m = box(shape=(2, 1, 1))
    quads = m.boundary_faces()
    mm = meshio.Mesh(m.points, [("quad", quads), ("hexahedron", m.cells)],
                     cell_data={"gmsh:physical": [np.full(len(quads), 9), np.array([5, 6])]},
                     field_data={"vertebra": np.array([5, 3]), "disc": np.array([6, 3]),
                                 "skin": np.array([9, 2])})
    with pytest.warns(MeshWarning, match="quad"):
        back = Mesh.from_meshio(mm)
    np.testing.assert_array_equal(back.cells, m.cells)
    assert back.names("gmsh:physical") == ["vertebra", "disc"]


def test_large_box_across_chunks():
    """100k cells: more than one chunk of the vectorised geometry loops (timings: benchmarks/bench_core.py)."""
    m = box((10.0, 10.0, 10.0), (50, 50, 40))        # 100k cells
    q = m.quality()
    faces = m.boundary_faces()
    assert m.n_cells == 100_000 and faces.shape[0] == 2 * (2500 + 2000 + 2000)
    assert q.inverted.size == 0
    # chunked loops (65536 cells per chunk) agree across chunk boundaries
    np.testing.assert_allclose(m.cell_volumes(), 1000.0 / 100_000, rtol=1e-12)
    np.testing.assert_allclose(q.scaled_jacobian, 1.0, rtol=1e-12)


def test_cell_folded_at_a_corner_warns_and_a_collapsed_corner_does_not():
    """A unit box of 2 x 2 x 2 cells whose middle node moves 0.4 of a cell along the diagonal, past the plane of
    its three neighbours in one cell: that cell is folded at the corner (negative corner scaled Jacobian) but
    positive at every Gauss point, so it passes the inverted-cell check with a MeshWarning naming it; a cube
    collapsed into a wedge (its back top edge onto the back bottom edge: corners 0) is silent."""
    import warnings

    from vertebrafe.errors import MeshWarning

    m = box(shape=(2, 2, 2))
    centre = int(np.flatnonzero(np.all(np.isclose(m.points, 0.5), axis=1))[0])
    m.points[centre] += 0.4 * 0.5
    q = m.quality()
    folded = np.flatnonzero(q.scaled_jacobian < 0)
    assert folded.size == 1 and q.min_jacobian.min() > 0
    with pytest.warns(MeshWarning, match=rf"1 of 8 cells are folded at a corner .* cells \[{folded[0]}\]"):
        m.check_inverted()
    wedge = box()
    back_top = np.isclose(wedge.points[:, 1], 1.0) & np.isclose(wedge.points[:, 2], 1.0)
    wedge.points[back_top, 2] = 0.0
    q = wedge.quality()
    assert q.scaled_jacobian.min() == 0.0 and q.min_jacobian.min() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeshWarning)
        wedge.check_inverted()
