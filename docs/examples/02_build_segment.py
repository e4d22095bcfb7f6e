"""Example 2: build and inspect a spinal segment (T12-L2) without solving anything.

Meshes an osteoporotic T12-L2 segment (trabecular vBMD 80 mg/cm^3), prints its per-level and
per-region summary (cells, volume, mean axial modulus) and derived geometry, writes the mesh to VTU
(tags with names, node and face sets; open it in ParaView or with ``vertebrafe view``) and, with
pyvista installed, saves three pictures: regions with the cortical shell translucent, the exploded
levels, and the mid-sagittal cut.

Run:  python docs/examples/02_build_segment.py [--element-size MM] [--out DIR]
(environment: VERTEBRAFE_EXAMPLE_ELEMENT_SIZE, VERTEBRAFE_EXAMPLE_OUT;
VERTEBRAFE_EXAMPLE_PICTURES=0 skips the pictures). Units: mm, MPa, mg/cm^3.
"""
import argparse
import os

import vertebrafe as vf


def main(element_size=2.0, out="example_output"):
    os.makedirs(out, exist_ok=True)
    seg = vf.segment("T12-L2", bmd=80.0, element_size=element_size)
    print(seg)
    print("levels (cranial first):", seg.levels, "discs:", seg.discs)
    print(seg.summary().to_string(index=False))
    for row in seg.geometry():
        print(f"{row['name']:>7} {row['kind']:<8} anterior {row['anterior_height_mm']:.1f} mm, "
              f"posterior {row['posterior_height_mm']:.1f} mm, wedge {row['wedge_deg']:.1f} deg")
    print("node sets:", sorted(seg.node_sets)[:6], "...")
    quality = seg.mesh.quality()
    print(f"smallest scaled Jacobian {quality.scaled_jacobian.min():.2f}")
    assert quality.scaled_jacobian.min() > 0.0

    path = os.path.join(out, "segment.vtu")
    seg.save(path)
    print(f"wrote {path}")
    if os.environ.get("VERTEBRAFE_EXAMPLE_PICTURES", "1") == "0":
        return seg
    try:
        from vertebrafe import viz
    except ImportError:                       # pragma: no cover (pictures need pyvista)
        return seg
    size = (800, 800)
    pictures = [
        viz.screenshot(seg, os.path.join(out, "segment_regions.png"), color_by="region", shell="translucent",
                       window_size=size),
        viz.screenshot(seg, os.path.join(out, "segment_levels_exploded.png"), color_by="level",
                       explode_distance=10.0, window_size=size),
        viz.screenshot(seg, os.path.join(out, "segment_sagittal.png"), color_by="region", clip="sagittal",
                       window_size=size),
    ]
    for p in pictures:
        print(f"wrote {p}")
    return seg


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--element-size", type=float,
                        default=float(os.environ.get("VERTEBRAFE_EXAMPLE_ELEMENT_SIZE", 2.0)), help="mm")
    parser.add_argument("--out", default=os.environ.get("VERTEBRAFE_EXAMPLE_OUT", "example_output"))
    args = parser.parse_args()
    main(args.element_size, args.out)
