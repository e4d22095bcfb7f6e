"""The figures of ``vertebrafe report``: the von Mises field and the regions on the mid-sagittal cut of a
case result, or of the reference and one treated case per variant of a study."""
from __future__ import annotations

import os
import pathlib

import numpy as np

from ..io.studydir import case_dir, case_status, damage, is_study_dir, read_study
from . import offscreen
from .convert import FIELDS, mark_ready, to_pyvista
from .views import screenshot

__all__ = ["report_figures"]


def _file_label(name):
    """``name`` made safe for a file name (letters, digits, ``.``, ``-``, ``_``)."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "case"


def _auto_scale(grid):
    """Magnification that makes the largest displacement 5 % of the bounding-box diagonal (0 if none)."""
    if "displacement_mm" not in grid.point_data:
        return 0.0
    u = np.asarray(grid.point_data["displacement_mm"])
    umax = float(np.linalg.norm(u, axis=1).max()) if u.size else 0.0
    return float(f"{0.05 * grid.length / umax:.2g}") if umax > 0 else 0.0


def _robust_clim(grids, array, percentile=95.0):
    """Colour range ``(0, volume-weighted percentile)`` of the cell array ``array`` over ``grids`` (MPa for
    stresses). Weighting by cell volume keeps the thin, stiff cortex and the few loaded cells at the plates
    from setting the range for the whole picture; cells above it take the top colour."""
    values, weights = [], []
    for g in grids:
        values.append(np.asarray(g.cell_data[array], dtype=float))
        weights.append(np.abs(np.asarray(g.compute_cell_sizes(length=False, area=False, volume=True)
                                         .cell_data["Volume"], dtype=float)))
    v, w = np.concatenate(values), np.concatenate(weights)
    keep = np.isfinite(v) & (w > 0)
    v, w = v[keep], w[keep]
    if not v.size:
        return (0.0, 1.0)
    order = np.argsort(v)
    cum = np.cumsum(w[order])
    hi = float(v[order][min(np.searchsorted(cum, percentile / 100.0 * cum[-1]), v.size - 1)])
    return (0.0, hi if hi > 0 else float(v.max()) or 1.0)


def _study_picks(directory):
    """``(reference, [treated, ...])`` cases of a study directory to draw, each ``(case name, result dir,
    variant)``, and notes about what is missing. The reference is the first case of the summary's reference
    variant (else the first case); per other variant the case with the reference's [grid] values and the
    middle value of the variant's own sweep."""
    meta = read_study(directory)
    cases = meta.get("cases", [])
    if not cases:
        return None, []
    ref_variant = meta.get("reference")
    ref = next((c for c in cases if ref_variant and c["variant"] == ref_variant), cases[0])
    grid_keys = meta.get("grid_keys", [])
    same = lambda c: all(c["params"].get(k) == ref["params"].get(k) for k in grid_keys)  # noqa: E731
    treated = []
    for variant in dict.fromkeys(c["variant"] for c in cases):
        if variant == ref["variant"]:
            continue
        pool = [c for c in cases if c["variant"] == variant and same(c)] or \
               [c for c in cases if c["variant"] == variant]
        treated.append(pool[(len(pool) - 1) // 2])
    pick = lambda c: (c["name"], case_dir(directory, c["id"]), c["variant"])  # noqa: E731
    return pick(ref), [pick(c) for c in treated]


def _verified_vtu(directory, cid):
    """Whether case ``cid`` of study ``directory`` finished and its result.vtu matches its checksum (a
    study of an older vertebrafe without checksums counts as verified)."""
    st = case_status(directory, cid)
    if st is None or st.get("status") != "ok":
        return False
    return not any(p.startswith("result.vtu") for p in damage(directory, cid, st))


def report_figures(directory, window_size=(1000, 750), notes=None, check=True):
    """Write the figures of ``vertebrafe report`` into ``directory/figures/``; returns their paths.

    For a case result (``directory/result.vtu``): ``von_mises_sagittal.png``, the von Mises stress [MPa]
    on the deformed shape (magnified so that the largest displacement is 5 % of the model's diagonal),
    cut on the mid-sagittal plane, and ``regions_sagittal.png``, the same cut coloured by region.

    For a study (``directory/study.json``): the same two pictures of the reference case (the first case of
    the summary's reference variant, e.g. NSM at the first bone density) named ``<case>_...png``, and per
    other variant one case (same [grid] values as the reference, middle of the variant's own sweep): its
    regions and ``<case>_vs_<reference>_von_mises_sagittal.png``, the two side by side with one colour range
    and one magnification. Cases without ``result.vtu`` (``output.vtu = false``) or not finished are skipped.

    The sagittal cuts of results with cement pass through the cement (``through="cement"``: for a
    bipedicular bolus, off the midline, a parasagittal plane), the others through the midline.
    Colour range of the von Mises pictures: 0 to the volume-weighted 95th percentile of the cells of the
    results shown (cells above it, mostly cortex, take the top colour; the scalar bar says so). ``notes``: a list that receives one line per thing skipped and why. With
    ``check``, off-screen rendering is first tested in a child process (:func:`offscreen_available`);
    when it fails, nothing is drawn and a note says why.
    """
    directory = pathlib.Path(directory)
    notes = [] if notes is None else notes
    jobs = []                           # (kind, name, vtu path(s), labels)
    if is_study_dir(directory):
        ref, treated = _study_picks(directory)
        if ref is None:
            notes.append("figures skipped: the study has no cases")
            return []
        missing, damaged = [], []
        for name, case_dir, _ in [ref] + treated:
            if not os.path.isfile(os.path.join(case_dir, "result.vtu")):
                missing.append(name)
            elif not _verified_vtu(directory, os.path.basename(case_dir)):
                missing.append(name)
                damaged.append(name)
        if set(missing) - set(damaged):
            notes.append(f"figures skipped for {', '.join(n for n in missing if n not in damaged)}: no result.vtu "
                         "(case not finished, or output.vtu = false in the study)")
        if damaged:
            notes.append(f"figures skipped for {', '.join(damaged)}: result.vtu is damaged (its checksum differs "
                         "from status.json, or the case is not finished); rerun the study to recompute it")
        ref_vtu = os.path.join(ref[1], "result.vtu")
        ref_ok = ref[0] not in missing
        if ref_ok:
            jobs.append(("field", f"{_file_label(ref[0])}_von_mises_sagittal.png", (ref_vtu,), (ref[0],)))
            jobs.append(("regions", f"{_file_label(ref[0])}_regions_sagittal.png", (ref_vtu,), (ref[0],)))
        for name, case_dir, _ in treated:
            if name in missing:
                continue
            vtu = os.path.join(case_dir, "result.vtu")
            jobs.append(("regions", f"{_file_label(name)}_regions_sagittal.png", (vtu,), (name,)))
            if ref_ok:
                jobs.append(("comparison", f"{_file_label(name)}_vs_{_file_label(ref[0])}_von_mises_sagittal.png",
                             (ref_vtu, vtu), (ref[0], name)))
            else:
                jobs.append(("field", f"{_file_label(name)}_von_mises_sagittal.png", (vtu,), (name,)))
    elif (directory / "result.vtu").exists():
        from ..outputs import verify
        if "result.vtu" in (verify(directory) or []):
            notes.append(f"figures skipped: {directory}/result.vtu is damaged (its checksum differs from "
                         ".vertebrafe.json); run the case again")
            return []
        vtu = str(directory / "result.vtu")
        label = directory.resolve().name
        jobs = [("field", "von_mises_sagittal.png", (vtu,), (label,)),
                ("regions", "regions_sagittal.png", (vtu,), (label,))]
    else:
        notes.append(f"figures skipped: {directory} holds no result.vtu (output.vtu = false?) and no study.json")
        return []
    if not jobs:
        return []
    if check:
        ok, why = offscreen.offscreen_available()
        if not ok:
            notes.append(f"figures skipped: off-screen rendering is not available ({why})")
            return []
    out_dir = directory / "figures"
    grids = {}

    def grid(path):
        if path not in grids:
            grids[path] = mark_ready(to_pyvista(path))
        return grids[path]

    def through(grids):
        """Sagittal cuts of cemented results pass through the cement (a bipedicular bolus is off the midline)."""
        for g in grids:
            if "cement_fraction" in g.cell_data and np.any(np.asarray(g.cell_data["cement_fraction"]) > 0):
                return "cement"
        return None

    written = []
    for kind, fname, paths, labels in jobs:
        target = out_dir / fname
        if kind == "regions":
            written.append(screenshot(grid(paths[0]), target, kind="segment", color_by="region", clip="sagittal",
                                      through=through([grid(paths[0])]), shell="opaque", window_size=window_size))
            continue
        shown = [grid(p) for p in paths]
        field = FIELDS["von_mises"]
        scale = _auto_scale(shown[0])
        clim = _robust_clim(shown, field.array)
        title = f"{field.title}, colours capped at {clim[1]:.3g}; deformation x{scale:g}"
        if kind == "field":
            written.append(screenshot(shown[0], target, field="von_mises", kind="field", clip="sagittal",
                                      through=through(shown), scale=scale, clim=clim, title=title,
                                      window_size=window_size))
        else:
            wide = (2 * window_size[0], window_size[1])
            written.append(screenshot(shown[0], target, field="von_mises", other=shown[1], kind="comparison",
                                      labels=labels, clip="sagittal", through=through(shown), scale=scale,
                                      clim=clim, title=title, window_size=wide))
    return written


