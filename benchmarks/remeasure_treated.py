#!/usr/bin/env python
"""Factor of risk and overload index of an intact osteoporotic T12-L2 in relaxed standing, and the
treated-level ratios of a vertebroplasty per tissue and reference volume (the numbers quoted in
docs/validation.md and docs/clinical.md).

Usage::

    python benchmarks/remeasure_treated.py --element-size 2

Model: T12-L2, vBMD 80, default MaterialSet. (1) intact, ``relaxed_standing``: ``factor_of_risk``
(compression / plate strength) and ``overload_index_yield`` per vertebra. (2) grade-2 wedge of L1, NSM
vs bipedicular VP (4 mL) vs Voigt-mixed VP (4 mL, the former default), 800 N + 7.5 N m flexion: von Mises
p95 ratios VP / NSM of L1 per region (tissues, ``bone``, ``body``, ``core``). Units: MPa, -.
"""
import argparse

import vertebrafe as vf
from vertebrafe.loads import Load
from vertebrafe.simulate import simulate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--element-size", type=float, default=2.0)
    h = ap.parse_args().element_size
    seg = vf.segment("T12-L2", bmd=80.0, element_size=h, posterior=False)
    r = simulate(seg, "relaxed_standing", solver="amg", rtol=1e-8)
    print(f"intact T12-L2, vBMD 80, {h:g} mm, relaxed standing (500 N):")
    for v in seg.levels:
        print(f"  {v}: factor_of_risk {r.value('factor_of_risk', v, 'vertebra'):.3f}  plate_strength_yield "
              f"{r.value('plate_strength_yield', v, 'vertebra'):.0f} N  overload_index_yield "
              f"{r.value('overload_index_yield', v, 'vertebra'):.3f}")
    nsm = vf.fracture(seg, "L1", kind="wedge", grade=2)
    load = Load(compression=800.0, flexion=7.5, name="flexion")
    res = {"NSM": simulate(nsm, load, case="NSM", solver="amg", rtol=1e-8, factor_of_risk=False)}
    for name, kw in (("VP", {}), ("VP-voigt", {"mixing": "voigt"})):
        res[name] = simulate(vf.vertebroplasty(nsm, "L1", volume=4.0, **kw), load, case=name, solver="amg",
                             rtol=1e-8, factor_of_risk=False)
    print(f"\nL1 von Mises p95 (MPa), 4 mL bipedicular VP vs NSM, 800 N + 7.5 N m, {h:g} mm:")
    for region in ("cortex", "endplate", "cancellous", "cement_bone", "bone", "body", "core"):
        ref = res["NSM"].value("von_mises_p95", "L1", region if region != "cement_bone" else "cancellous")
        out = []
        for name in ("VP", "VP-voigt"):
            try:
                v = res[name].value("von_mises_p95", "L1", region)
                out.append(f"{name} {v:.3f} ({v / ref:.2f})")
            except Exception:  # noqa: BLE001 - region absent
                out.append(f"{name} -")
        print(f"  {region:12s} NSM {ref:.3f}  " + "  ".join(out))
    for lv in ("T12", "L2"):
        print(f"  adjacent {lv} body p95 ratio VP/NSM: "
              f"{res['VP'].value('von_mises_p95', lv, 'body') / res['NSM'].value('von_mises_p95', lv, 'body'):.3f}")


if __name__ == "__main__":
    main()
