"""The reference meshes in meshes/: readable, tagged as meshes/README.md says, valid, volumes right."""
import math
import os

import meshio
import numpy as np
import pytest

import vertebrafe as vf

MESHES = os.path.join(os.path.dirname(__file__), "..", "..", "meshes")


def test_t12_l2_segment():
    mesh = vf.Mesh.load(os.path.join(MESHES, "t12-l2_3mm.vtu"))
    assert mesh.cell_type == "hexahedron" and mesh.n_cells == 11520
    assert set(mesh.tag_names["region"].values()) == {"cortex", "endplate", "cancellous", "annulus", "nucleus"}
    assert set(mesh.tag_names["level"].values()) == {"T12", "T12-L1", "L1", "L1-L2", "L2"}
    assert {"segment:superior", "segment:inferior", "L1:superior"} <= set(mesh.node_sets)
    assert mesh.quality().inverted.size == 0
    z = mesh.points[:, 2]
    assert np.all(z[mesh.node_sets["segment:superior"]] > z[mesh.node_sets["segment:inferior"]].max())


def test_block_inclusion_volume():
    mesh = vf.Mesh.load(os.path.join(MESHES, "block_inclusion.vtu"))
    vol = mesh.cell_volumes()
    assert vol.sum() == pytest.approx(40 * 30 * 25, rel=1e-12)
    inclusion = mesh.cells_in("region", ["inclusion"])
    r = ((mesh.cell_centers() - [20.0, 15.0, 12.5]) / [10.0, 8.0, 6.0]) ** 2
    np.testing.assert_array_equal(inclusion, r.sum(axis=1) <= 1.0)  # exactly the cells centred inside
    ellipsoid = 4.0 / 3.0 * math.pi * 10 * 8 * 6
    assert 0.85 * ellipsoid < vol[inclusion].sum() < ellipsoid  # a staircase of 2.5 mm cells: 13 % less


def test_tetrahedral_vertebra_from_gmsh():
    m = meshio.read(os.path.join(MESHES, "l1_body_tet4.vtu"))
    assert [b.type for b in m.cells] == ["tetra"]
    p, t = m.points, m.cells[0].data
    v = np.einsum("ij,ij->i", np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]]), p[t[:, 3]] - p[t[:, 0]]) / 6
    assert v.min() > 0  # every tetrahedron positively oriented (VTK order)
    # the loft between two ellipses: V = pi h int_0^1 a(t) b(t) dt with linear semi-axes
    a0, b0, a1, b1, h = 22.0, 16.25, 20.55, 15.75, 0.5 * (24.7 + 26.6)
    exact = math.pi * h * (a0 * b0 + (a0 * (b1 - b0) + b0 * (a1 - a0)) / 2 + (a1 - a0) * (b1 - b0) / 3)
    assert v.sum() == pytest.approx(exact, rel=0.01)  # polygonal boundary: about 0.2 % less
    assert m.field_data["body"].tolist() == [1, 3]
    assert np.all(m.cell_data["gmsh:physical"][0] == 1)
    if "tetra" in vf.elements.ELEMENT_TYPES:  # readable as a vertebrafe mesh once tet4 exists
        assert vf.Mesh.load(os.path.join(MESHES, "l1_body_tet4.vtu")).n_cells == len(t)
