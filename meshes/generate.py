"""Regenerate the reference meshes in this folder (see README.md).

    python meshes/generate.py            # all three; the tetrahedral vertebra needs gmsh (pip install gmsh)
    python meshes/generate.py --only block_inclusion

Each mesh is rebuilt from code, so the files are reproducible: the T12-L2 segment from vertebrafe's
mesher, the block from vertebrafe.box, the tetrahedral vertebral body from gmsh (an external mesher) on
the L1 dimensions of vertebrafe's level table. Existing files here are replaced (this script wrote them).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def t12_l2():
    """The default T12-L2 segment at 3 mm with its region/level tags, node and face sets (hex8)."""
    import vertebrafe as vf

    seg = vf.segment("T12-L2", element_size=3.0)
    seg.mesh.save(os.path.join(HERE, "t12-l2_3mm.vtu"))
    return seg.mesh


def block_inclusion():
    """A 40 x 30 x 25 mm block (hex8, 2.5 mm cells) with an ellipsoidal inclusion (semi-axes 10, 8, 6 mm)
    tagged ``region`` = matrix / inclusion, the geometry of benchmarks/bench_core.py."""
    import vertebrafe as vf

    mesh = vf.box((40.0, 30.0, 25.0), (16, 12, 10))
    r = ((mesh.cell_centers() - np.array([20.0, 15.0, 12.5])) / np.array([10.0, 8.0, 6.0])) ** 2
    mesh.set_cell_data("region", np.where(r.sum(axis=1) <= 1.0, 1, 0).astype(np.int64),
                       names={0: "matrix", 1: "inclusion"})
    mesh.save(os.path.join(HERE, "block_inclusion.vtu"))
    return mesh


def tet_vertebra(size=2.5):
    """An L1 vertebral body (elliptic cylinder between the superior and inferior endplate ellipses of the
    level table, mean height) meshed with linear tetrahedra by gmsh; physical groups ``body`` (volume),
    ``superior`` and ``inferior`` (endplate surfaces). Returns the meshio mesh or None without gmsh."""
    try:
        import gmsh
    except ImportError:
        print("tet_vertebra: gmsh is not installed (pip install gmsh); skipped", file=sys.stderr)
        return None
    import meshio
    from vertebrafe.anatomy.levels import level_dimensions
    from vertebrafe.io.vtu import write

    d = level_dimensions("L1")
    height = 0.5 * (d.anterior_height + d.posterior_height)
    gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("l1_body")
        occ = gmsh.model.occ
        bottom = occ.addEllipse(0, 0, 0, d.inferior_width / 2, d.inferior_depth / 2)
        top = occ.addEllipse(0, 0, height, d.superior_width / 2, d.superior_depth / 2)
        loops = [occ.addCurveLoop([bottom]), occ.addCurveLoop([top])]
        occ.addThruSections(loops, makeSolid=True)
        occ.synchronize()
        vol = gmsh.model.getEntities(3)[0][1]
        faces = [t for _, t in gmsh.model.getBoundary([(3, vol)], oriented=False)]
        z = {t: gmsh.model.occ.getCenterOfMass(2, t)[2] for t in faces}
        gmsh.model.addPhysicalGroup(3, [vol], 1, "body")
        gmsh.model.addPhysicalGroup(2, [t for t in faces if z[t] > height - 1e-6], 2, "superior")
        gmsh.model.addPhysicalGroup(2, [t for t in faces if z[t] < 1e-6], 3, "inferior")
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.option.setNumber("Mesh.MeshSizeMin", 0.5 * size)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.option.setNumber("Mesh.RandomSeed", 1)
        gmsh.model.mesh.generate(3)
        msh = os.path.join(HERE, "_l1_tet.msh")
        gmsh.write(msh)
    finally:
        gmsh.finalize()
    m = meshio.read(msh)
    os.remove(msh)
    tets = [i for i, b in enumerate(m.cells) if b.type == "tetra"]
    out = meshio.Mesh(m.points, [m.cells[i] for i in tets],
                      cell_data={"gmsh:physical": [m.cell_data["gmsh:physical"][i] for i in tets]},
                      field_data={"body": np.array([1, 3])})  # gmsh's physical name table: name -> [tag, dim]
    write(os.path.join(HERE, "l1_body_tet4.vtu"), out)  # meshio's VTU writer drops field data; this keeps it
    return out


MESHES = {"t12-l2_3mm": t12_l2, "block_inclusion": block_inclusion, "l1_body_tet4": tet_vertebra}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(MESHES), action="append", help="regenerate only these")
    args = parser.parse_args(argv)
    for name in args.only or MESHES:
        if MESHES[name]() is not None:
            path = os.path.join(HERE, f"{name}.vtu")
            print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
