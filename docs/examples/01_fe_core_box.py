"""Example 1: solve your own mesh with the FE core (no anatomy involved).

A 10 x 10 x 20 mm block of bone-like material (E = 500 MPa, nu = 0.3):

A. uniaxial compression by a pressure on the top face with roller supports; the top displacement
   equals the closed form  u_z = -p L / E  (hex8 elements reproduce homogeneous strain exactly);
B. the same block glued to a rigid plate loaded by a force and a flexion moment; the plate's motion
   and the support reactions (equilibrium) are printed, and the result is written to VTU (open it in
   ParaView or with ``vertebrafe view``) and, with pyvista installed, to a PNG.

Run:  python docs/examples/01_fe_core_box.py [--element-size MM] [--out DIR]
(environment: VERTEBRAFE_EXAMPLE_ELEMENT_SIZE, VERTEBRAFE_EXAMPLE_OUT;
VERTEBRAFE_EXAMPLE_PICTURES=0 skips the pictures). Units: mm, N, MPa.
"""
import argparse
import os

import numpy as np

import vertebrafe as vf


def main(element_size=1.0, out="example_output"):
    os.makedirs(out, exist_ok=True)
    lengths = np.array([10.0, 10.0, 20.0])                                      # mm
    shape = tuple(int(v) for v in np.maximum(1, np.round(lengths / element_size)))
    mesh = vf.box(lengths=lengths, shape=shape, origin=(-5.0, -5.0, 0.0))
    E, nu, p = 500.0, 0.3, 2.0                                                 # MPa, -, MPa

    # --- A: uniaxial compression, rollers on three sides ---------------------------------------------
    model = vf.Model(mesh, E=E, nu=nu)
    model.fix(mesh.node_sets["zmin"], "z")
    model.fix(mesh.node_sets["xmin"], "x")
    model.fix(mesh.node_sets["ymin"], "y")
    model.add_pressure(mesh.face_sets["zmax"], p)                             # pushes into the top face
    sol = model.solve()
    uz = sol.displacement[mesh.node_sets["zmax"], 2].mean()
    exact = -p * lengths[2] / E
    print(f"A  {mesh.n_cells} cells: top displacement {uz:.6f} mm, closed form {exact:.6f} mm "
          f"(relative error {abs(uz / exact - 1):.1e}); sigma_zz = {sol.cell_stress[:, 2].mean():.4f} MPa")
    assert abs(uz / exact - 1.0) < 1e-6

    # --- B: rigid plate with force and moment, base fixed --------------------------------------------
    model = vf.Model(mesh, E=E, nu=nu)
    model.fix(mesh.node_sets["zmin"], "xyz")
    plate = model.rigid_plate(mesh.node_sets["zmax"])                         # centre: node centroid
    plate.load(force=(0.0, 0.0, -500.0), moment=(-500.0, 0.0, 0.0))          # N, N mm (flexion: -x)
    sol = model.solve()
    translation, rotation = sol.plate_motion(plate)
    base = sol.reaction(mesh.node_sets["zmin"])
    print(f"B  plate translation {np.round(translation, 5)} mm, rotation {np.round(rotation, 6)} rad")
    print(f"   base reaction {np.round(base, 3)} N (balances the 500 N load)")
    print(f"   von Mises max {sol.von_mises.max():.3f} MPa, strain energy {sol.strain_energy:.4f} mJ")
    assert np.allclose(base, (0.0, 0.0, 500.0), atol=1e-6 * 500.0)

    path = os.path.join(out, "box_plate.vtu")
    sol.save(path)
    print(f"   wrote {path}")
    if os.environ.get("VERTEBRAFE_EXAMPLE_PICTURES", "1") == "0":
        return sol
    try:
        from vertebrafe import viz
    except ImportError:                       # pragma: no cover (pictures need pyvista)
        return sol
    png = viz.screenshot(sol, os.path.join(out, "box_plate_von_mises.png"), field="von_mises", scale="auto",
                         clip="sagittal", window_size=(800, 600))
    print(f"   wrote {png}")
    return sol


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--element-size", type=float,
                        default=float(os.environ.get("VERTEBRAFE_EXAMPLE_ELEMENT_SIZE", 1.0)), help="mm")
    parser.add_argument("--out", default=os.environ.get("VERTEBRAFE_EXAMPLE_OUT", "example_output"))
    args = parser.parse_args()
    main(args.element_size, args.out)
