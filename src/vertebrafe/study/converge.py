"""Mesh convergence of a case or study: every case at several element sizes, and the table of changes.

:func:`convergence_study` turns a case file or a study file into a study whose ``[grid]`` gains
``segment.element_size`` (so a reference variant's ratios compare cases of the same element size: the
reference is matched on the ``[grid]`` keys); :func:`run_convergence` runs it with :func:`run_study` (validated
up front, stable case ids, resumable, one failing case does not stop the others) and writes
``DIR/convergence.csv`` and ``DIR/convergence.md`` (:mod:`vertebrafe.study.convergence` makes the table).
"""
from __future__ import annotations

import math
import os

from ..case import SCHEMA, CaseError, fmt_value, load_toml
from ..errors import InputError
from ..io.atomic import write_text
from ..io.studydir import lock
from . import convergence as cv
from .plan import parse_study
from .run import run_study

__all__ = ["SIZE_KEY", "parse_sizes", "check_tolerance", "convergence_study", "run_convergence",
           "convergence_table", "write_convergence"]

#: The swept key.
SIZE_KEY = "segment.element_size"
_IMAGE_PATHS = ("ct", "labels", "rods")


def _size_field():
    return next(f for f in SCHEMA["segment"] if f.name == "element_size")


def parse_sizes(text, option="--sizes"):
    """``"3,2,1.5"`` (or a sequence of numbers) -> ``[3.0, 2.0, 1.5]``: at least two sizes, strictly
    decreasing (coarse to fine), each within the schema's ``segment.element_size`` range; else
    :class:`~vertebrafe.errors.InputError` naming ``option``, the value and what is allowed."""
    f = _size_field()
    allowed = (f"allowed: at least 2 element sizes in mm, coarse to fine (strictly decreasing), each in "
               f"[{f.low:g}, {f.high:g}] mm, e.g. 3,2,1.5")
    shown = text if isinstance(text, str) else ",".join(fmt_value(x) for x in text)
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    sizes = []
    for item in items:
        try:
            h = float(item)
        except (TypeError, ValueError):
            raise InputError(f"{option} = {shown!r}: {item!r} is not a number; {allowed}") from None
        if not math.isfinite(h) or not f.low <= h <= f.high:
            raise InputError(f"{option} = {shown!r}: {SIZE_KEY} = {item} mm is out of range; {allowed}")
        sizes.append(h)
    if len(sizes) < 2:
        raise InputError(f"{option} = {shown!r}: {len(sizes)} size; {allowed}")
    for a, b in zip(sizes, sizes[1:]):
        if not a > b:
            raise InputError(f"{option} = {shown!r}: {b:g} mm after {a:g} mm is not smaller; {allowed}")
    return sizes


def check_tolerance(tolerance, option="--tolerance"):
    """``tolerance`` (%) as a float in (0, 100); else :class:`~vertebrafe.errors.InputError`."""
    try:
        t = float(tolerance)
    except (TypeError, ValueError):
        t = math.nan
    if not 0.0 < t < 100.0:
        raise InputError(f"{option} = {tolerance!r}: allowed a number in (0, 100) % (the largest change from the "
                         "second-finest to the finest size of a converged row)")
    return t


def _absolute_image_paths(raw, path):
    """A case dict whose ``[image]`` paths are made absolute relative to the case file ``path`` (a study's
    cases are not files, so their relative paths would resolve against the working directory)."""
    image = raw.get("image")
    if not isinstance(image, dict):
        return raw
    here = os.path.dirname(os.path.abspath(path))
    fixed = {k: (os.path.join(here, v) if k in _IMAGE_PATHS and isinstance(v, str) and not os.path.isabs(v) else v)
             for k, v in image.items()}
    return {**raw, "image": fixed}


def _sets_size(table):
    """Whether a study table (``[grid]``, a variant's ``grid`` or ``set``) gives ``segment.element_size``."""
    if not isinstance(table, dict):
        return False
    seg = table.get("segment")
    return SIZE_KEY in table or (isinstance(seg, dict) and "element_size" in seg)


def convergence_study(path, sizes, overrides=None):
    """The study that runs the case or study file ``path`` at every element size of ``sizes`` (mm, coarse to
    fine, :func:`parse_sizes`): a case file becomes a study of one variant (named as the case); a study file
    keeps its base, grid, variants and reference, gains ``segment.element_size`` in ``[grid]`` and loses its
    plots (they could not show the added dimension). ``overrides`` change the base case (``--set``);
    ``segment.element_size`` may not be set there, nor swept or set by the study. Returns a
    :class:`~vertebrafe.study.Study`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"FILE = {path!r}: {'is a directory' if os.path.isdir(path) else 'file not found'}; "
                         "allowed: a case or study file (.toml, docs/cases.md)")
    sizes = parse_sizes(sizes)
    overrides = dict(overrides or {})
    if SIZE_KEY in overrides:
        raise InputError(f"--set {SIZE_KEY}={fmt_value(overrides[SIZE_KEY])}: the element size is what "
                         "converge sweeps; allowed: give the sizes with --sizes")
    raw = load_toml(path)
    if "study" in raw and "segment" not in raw:
        grid = raw.get("grid", {})
        grid = grid if isinstance(grid, dict) else {}
        if _sets_size(grid):
            raise InputError(f"{path}: grid.{SIZE_KEY} is swept by the study; converge sweeps the element size "
                             "itself; allowed: remove it from [grid] and give the sizes with --sizes")
        variants = raw.get("variants") if isinstance(raw.get("variants"), list) else []
        for i, v in enumerate(variants):
            for part in ("grid", "set"):
                if isinstance(v, dict) and _sets_size(v.get(part)):
                    raise InputError(f"{path}: variants[{i}].{part}.{SIZE_KEY} is given; converge sweeps the element "
                                     "size itself; allowed: remove it from the study and give the sizes with --sizes")
        raw = dict(raw)
        raw["grid"] = {**grid, SIZE_KEY: list(sizes)}
        summary = raw.get("summary")
        if isinstance(summary, dict):
            raw["summary"] = {k: v for k, v in summary.items() if k != "plots"}
        return parse_study(raw, source=path, overrides=overrides)
    name = os.path.splitext(os.path.basename(path))[0]
    case_meta = raw.get("case") if isinstance(raw.get("case"), dict) else {}
    name = case_meta.get("name") or name
    if not isinstance(name, str):
        raise CaseError(f"{path}: case.name = {fmt_value(name)}; expected a string")
    study_raw = {"study": {"name": name, "description": f"mesh convergence of {os.path.basename(path)}"},
                 "base": _absolute_image_paths(raw, path), "grid": {SIZE_KEY: list(sizes)},
                 "variants": [{"name": name}]}
    return parse_study(study_raw, source=path, overrides=overrides)


def _label(sc, swept):
    """Name of study case ``sc`` without its element size: the variant and the other swept values."""
    parts = [sc.variant] if sc.variant else []
    parts += [f"{k.split('.')[-1]}{fmt_value(sc.params[k]).strip(chr(39))}" for k in swept
              if k != SIZE_KEY and k in sc.params]
    return "-".join(parts) or sc.case.name


def convergence_table(study, summary, sizes, tolerance):
    """The convergence table (:func:`vertebrafe.study.convergence.table`) of ``summary`` (the DataFrame of a
    study's ``summary.csv``) for the cases of ``study`` (from :func:`convergence_study`): one row per case
    without the size, relation, level, region, metric and quantity (``value``; with a reference variant also
    ``ratio``, the ratio to the reference at the same size, except for the reference's own rows and for ratios
    whose reference value is 0 or missing at every size; their count is ``attrs["undefined_ratios"]``)."""
    import pandas as pd

    sizes = [float(h) for h in sizes]
    swept = [k for k in study.parameters if k in study.grid or any(k in v.grid for v in study.variants)]
    label = {sc.id: _label(sc, swept) for sc in study.cases}
    size = {sc.id: float(sc.params[SIZE_KEY]) for sc in study.cases}
    params = {}
    for sc in study.cases:
        params.setdefault(label[sc.id], {k: v for k, v in sc.params.items() if k != SIZE_KEY})
    other = [k for k in study.parameters if k != SIZE_KEY]
    base_keys = ["relation", "level", "region", "metric", "unit"]
    frames = []
    s = summary[summary["case_id"].isin(label)].copy()
    s["case"] = s["case_id"].map(label)
    s["size"] = s["case_id"].map(size)
    s["relation"] = s["relation"].fillna("") if "relation" in s else ""
    s["unit"] = s["unit"].fillna("")
    frames.append(s.assign(quantity="value")[["case", "size"] + base_keys + ["quantity", "value"]])
    if "ratio" in s.columns and study.summary.reference:
        r = s[s["variant"] != study.summary.reference].copy()
        r = r.assign(quantity="ratio", numerator=r["value"], denominator=r["reference"], operand_unit=r["unit"],
                     value=r["ratio"], unit="")
        frames.append(r[["case", "size"] + base_keys + ["quantity", "value", "numerator", "denominator",
                                                        "operand_unit"]])
    long = pd.concat(frames, ignore_index=True)
    keys = ["case"] + base_keys + ["quantity"]
    conv = cv.table(long, sizes, tolerance, keys)
    undefined = (conv["quantity"] == "ratio") & conv[[cv.size_column(h) for h in sizes]].isna().all(axis=1)
    conv = conv[~undefined].reset_index(drop=True)
    conv.attrs["undefined_ratios"] = int(undefined.sum())
    cols = (["variant"] if len(study.variants) > 1 else []) + other
    if cols:
        by_label = {lab: {"variant": next(sc.variant for sc in study.cases if label[sc.id] == lab), **p}
                    for lab, p in params.items()}
        for i, k in enumerate(cols):
            conv.insert(1 + i, k, conv["case"].map(lambda lab, k=k: by_label.get(lab, {}).get(k)))
    return conv


def _summary_lines(conv, sizes, tolerance, name):
    counts = cv.tally(conv)
    judged = counts["converged"] + counts["not converged"]
    a, b = sizes[-2], sizes[-1]
    head = (f"{counts['converged']} of {judged} rows change by less than {tolerance:g} % from {a:g} to {b:g} mm "
            f"({name}, sizes {', '.join(f'{h:g}' for h in sizes)} mm)")
    notes = []
    if counts["near zero"]:
        notes.append(f"{counts['near zero']} rows near zero are not counted (both finest values at most "
                     f"{100 * cv.NEAR_ZERO:g} % of their metric's largest magnitude, or {cv.UNIT_FLOOR:g} of the "
                     "largest of their unit, or a ratio of such a value)")
    if counts["incomplete"]:
        notes.append(f"{counts['incomplete']} rows lack a value at {a:g} or {b:g} mm (a failed case, failures.csv, or "
                     "a ratio whose reference value is 0 there)")
    if conv.attrs.get("undefined_ratios"):
        notes.append(f"{conv.attrs['undefined_ratios']} ratios are left out: their reference value is 0 (or missing) at every size")
    return [head] + notes


def _misses(conv):
    miss = conv[conv["verdict"] == "not converged"].copy()
    miss["_worst"] = miss["change_pct"].abs().fillna(math.inf)
    return miss.sort_values("_worst", ascending=False, kind="stable").drop(columns="_worst")


def write_convergence(out, study, sizes, tolerance, max_listed=50):
    """Write ``out/convergence.csv`` (:func:`convergence_table` of ``out/summary.csv``) and
    ``out/convergence.md`` (the summary lines and the rows that miss, worst first, at most ``max_listed``).
    Returns ``{"csv", "md", "table", "lines", "misses"}`` (paths, the table, the summary lines, the rows that
    miss as a DataFrame)."""
    import pandas as pd

    from ..report import markdown_table

    out = os.path.abspath(os.fspath(out))
    summary_path = os.path.join(out, "summary.csv")
    summary = pd.read_csv(summary_path) if os.path.exists(summary_path) else None
    if summary is None or summary.empty:
        conv = cv.table(pd.DataFrame(columns=["case", "size", "metric", "quantity", "value"]), sizes, tolerance,
                        ["case", "relation", "level", "region", "metric", "unit", "quantity"])
    else:
        conv = convergence_table(study, summary, sizes, tolerance)
    lines = _summary_lines(conv, sizes, tolerance, study.name)
    misses = _misses(conv)
    csv_path, md_path = os.path.join(out, "convergence.csv"), os.path.join(out, "convergence.md")
    write_text(csv_path, conv.to_csv(index=False))
    shown = ["case", "relation", "level", "region", "metric", "unit", "quantity"] + \
        [cv.size_column(h) for h in sizes] + ["change_pct"] + [c for c in ("order", "richardson") if c in conv.columns]
    md = [f"# Mesh convergence: {study.name}", "",
          f"`{SIZE_KEY}` = {', '.join(f'{h:g}' for h in sizes)} mm (coarse to fine); tolerance {tolerance:g} % on the "
          "change from the second-finest to the finest size, relative to the finest value. Table: "
          "convergence.csv (docs/cli.md, `vertebrafe converge`).", ""]
    md += [f"* {line}" for line in lines] + [""]
    if len(misses):
        md += [f"Rows that miss, worst first ({min(len(misses), max_listed)} of {len(misses)}):", "",
               markdown_table(misses[shown].head(max_listed).reset_index(drop=True)), ""]
    else:
        md += ["No row misses.", ""]
    write_text(md_path, "\n".join(md))
    return {"csv": csv_path, "md": md_path, "table": conv, "lines": lines, "misses": misses[shown]}


def run_convergence(path, out, sizes, tolerance=5.0, *, overrides=None, workers=None, runner=None, progress=True,
                    log=None, force=False):
    """Run the case or study file ``path`` at every element size of ``sizes`` into the study folder ``out``
    (:func:`convergence_study`, :func:`~vertebrafe.study.run_study`; resumable) and write its convergence
    table (:func:`write_convergence`). Returns ``(StudyRun, written)`` with ``written`` as
    :func:`write_convergence` returns it."""
    sizes = parse_sizes(sizes)
    tolerance = check_tolerance(tolerance)
    study = path if not isinstance(path, (str, os.PathLike)) else convergence_study(path, sizes, overrides)
    run = run_study(study, out, workers=workers, runner=runner, progress=progress, log=log, force=force)
    with lock(os.fspath(out)):
        written = write_convergence(out, study, sizes, tolerance)
    return run, written

