"""Reports: summary tables and plots of a study directory, and the tables of a case result."""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
from dataclasses import dataclass
from typing import Optional

from .errors import InputError
from .outputs import check_name
from .io.atomic import atomic_path, write_text
from .io.studydir import case_dir, case_status, damage, read_study

__all__ = ["PlotSpec", "summarize", "key_metrics", "print_tables", "markdown_table", "write_report_md", "case_report"]

@dataclass(frozen=True)
class PlotSpec:
    """One summary plot: ``y`` (``"ratio"`` against the reference or ``"value"``) of ``metric`` in
    ``region`` of the levels with ``relation`` (``"adjacent"`` = both adjacent vertebrae, or a relation
    such as ``treated``, ``adjacent_superior``, ``disc_superior``, ``segment``, or a level name), against
    the swept key ``x``, one line per ``hue`` value, one panel per ``facet`` value."""

    metric: str
    x: str
    region: str = "bone"
    relation: str = "adjacent"
    y: str = "ratio"
    hue: str = "variant"
    facet: Optional[str] = None
    title: str = ""
    name: str = ""


# ------------------------------------------------------------------------------------------------
# Summary and plots


def _relation_map(case_dict):
    from .post.compare import relations
    levels = case_dict["segment"]["levels"]
    treated = case_dict.get("treatment", {}).get("level") or case_dict.get("fracture", {}).get("level")
    return relations(levels, treated)


def summarize(out):
    """Write ``summary.csv``, ``failures.csv`` and the plots of the study in ``out`` (from ``study.json``
    and the finished case directories). Only cases whose files verify against the checksums of their
    ``status.json`` enter the summary; damaged ones are listed in ``failures.csv`` with status
    ``damaged``. Returns ``{"summary": path, "failures": path, "plots": [paths], "tables": {plot name:
    DataFrame pivot}, "notes": [plots that could not be drawn, and why]}``."""
    import pandas as pd

    out = os.path.abspath(os.fspath(out))
    try:
        meta = read_study(out)
    except OSError:
        raise InputError(f"{out}: not a study directory (no study.json); run 'vertebrafe study' first") from None
    _check_meta(meta, out)
    params = meta["parameters"]
    frames, failures = [], []
    for c in meta["cases"]:
        st = case_status(out, c["id"])
        if st is None or st.get("status") != "ok":
            failures.append({"id": c["id"], "name": c["name"], "variant": c["variant"],
                             "status": "missing" if st is None else st.get("status"),
                             "error": None if st is None else st.get("error"), **c["params"]})
            continue
        problems = damage(out, c["id"], st)
        if problems:
            failures.append({"id": c["id"], "name": c["name"], "variant": c["variant"], "status": "damaged",
                             "error": "; ".join(problems), **c["params"]})
            continue
        if "metrics.csv" not in st["checksums"]:
            continue                       # [output] metrics = false: nothing to summarise
        df = pd.read_csv(os.path.join(case_dir(out, c["id"]), "metrics.csv"))
        rel = _relation_map(c["case"])
        df.insert(0, "relation", df["level"].map(lambda n: rel.get(n, "")))
        df = df.drop(columns=[x for x in ("case",) if x in df.columns])
        df.insert(0, "case", c["name"])
        df.insert(0, "variant", c["variant"])
        df.insert(0, "case_id", c["id"])
        for i, k in enumerate(params):
            df.insert(3 + i, k, c["params"].get(k, _lookup(c["case"], k)))
        frames.append(df)
    paths = {"plots": [], "tables": {}, "notes": []}
    fail_df = pd.DataFrame(failures, columns=["id", "name", "variant", "status", "error"] + params)
    paths["failures"] = os.path.join(out, "failures.csv")
    write_text(paths["failures"], fail_df.to_csv(index=False))
    if not frames:
        with contextlib.suppress(FileNotFoundError):       # an earlier summary no longer holds
            os.remove(os.path.join(out, "summary.csv"))
        return paths
    summary = pd.concat(frames, ignore_index=True)
    ref = meta.get("reference")
    if ref:
        summary = _add_reference(summary, meta, ref)
    paths["summary"] = os.path.join(out, "summary.csv")
    write_text(paths["summary"], summary.to_csv(index=False))
    if meta.get("plots"):
        os.makedirs(os.path.join(out, "plots"), exist_ok=True)
        for spec in meta["plots"]:
            png, table = _plot(summary, PlotSpec(**spec), out, meta)
            if png:
                paths["plots"].append(png)
                paths["tables"][spec["name"]] = table
            else:
                paths["notes"].append(f"plot {spec['name']}: no rows of metric {spec['metric']!r} in region "
                                      f"{spec['region']!r} ({spec['relation']}) among the finished cases; not drawn")
    return paths


def _check_meta(meta, out):
    """The case ids and plot names of a study.json must be safe file names (a received study folder
    must not make vertebrafe read or write outside it)."""
    src = os.path.join(out, "study.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("cases"), list):
        raise InputError(f"{src}: not a vertebrafe study record (no list 'cases')")
    for i, c in enumerate(meta["cases"]):
        check_name(c.get("id") if isinstance(c, dict) else c, f"{src}: cases[{i}].id")
    for i, p in enumerate(meta.get("plots") or []):
        check_name(p.get("name") if isinstance(p, dict) else p, f"{src}: plots[{i}].name")


def _lookup(case_dict, key):
    node = case_dict
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _add_reference(summary, meta, ref):
    """Columns ``reference_id``, ``reference``, ``ratio``, ``change``: each case against the case of the
    reference variant with the same values of the [grid] keys."""
    import numpy as np
    import pandas as pd
    grid_keys = meta["grid_keys"]
    cases = {c["id"]: c for c in meta["cases"]}
    refs = {}
    for c in meta["cases"]:
        if c["variant"] == ref:
            key = tuple(json.dumps(c["params"].get(k)) for k in grid_keys)
            refs.setdefault(key, c["id"])
    ref_id = {}
    for cid, c in cases.items():
        key = tuple(json.dumps(c["params"].get(k)) for k in grid_keys)
        ref_id[cid] = refs.get(key)
    summary = summary.copy()
    summary["reference_id"] = summary["case_id"].map(ref_id)
    keys = ["level", "region", "metric", "unit"]
    r = summary[summary["case_id"].isin(set(refs.values()))][["case_id"] + keys + ["value"]]
    r = r.rename(columns={"case_id": "reference_id", "value": "reference"})
    merged = summary.merge(r, on=["reference_id"] + keys, how="left")
    ref_v = merged["reference"].to_numpy(dtype=float)
    val = merged["value"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        merged["ratio"] = np.where(ref_v != 0, val / np.where(ref_v != 0, ref_v, 1.0), np.nan)
    merged["change"] = val - ref_v
    return pd.DataFrame(merged)


def _select(summary, spec):
    sel = summary[(summary["metric"] == spec.metric) & (summary["region"] == spec.region)]
    if spec.relation == "adjacent":
        sel = sel[sel["relation"].isin(["adjacent_superior", "adjacent_inferior"])]
    elif spec.relation in set(summary["relation"]):
        sel = sel[sel["relation"] == spec.relation]
    else:
        sel = sel[sel["level"] == spec.relation]
    return sel


def _unit(key):
    """Unit of a dotted case key from the case schema ('' if none)."""
    from .case import SCHEMA
    section, _, name = key.partition(".")
    for f in SCHEMA.get(section, ()):
        if f.name == name:
            return f.unit
    return ""


def _label(key):
    unit = _unit(key)
    return f"{key} [{unit}]" if unit else key


def _plot(summary, spec, out, meta):
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    sel = _select(summary, spec)
    if sel.empty or spec.x not in sel.columns:
        return None, None
    ycol = spec.y
    ref = meta.get("reference")
    if ycol != "value" and ref:
        sel = sel[sel["variant"] != ref]
    facets = [None] if not spec.facet else sorted(sel[spec.facet].dropna().unique())
    index = [spec.facet] if spec.facet else []
    table = sel.pivot_table(index=index + [spec.hue, "level"], columns=spec.x, values=ycol, aggfunc="mean")
    write_text(os.path.join(out, "plots", f"{spec.name}.csv"), table.to_csv())
    fig, axes = plt.subplots(1, len(facets), figsize=(4.2 * len(facets) + 0.8, 3.8), sharey=True, squeeze=False)
    markers = itertools.cycle("os^Dv<>")
    hues = list(dict.fromkeys(sel[spec.hue].tolist()))
    mk = {h: next(markers) for h in hues}
    colours = {h: f"C{i}" for i, h in enumerate(hues)}
    styles = itertools.cycle(["-", "--", ":", "-."])
    levels = list(dict.fromkeys(sel["level"].tolist()))
    ls = {lv: next(styles) for lv in levels}
    for ax, fv in zip(axes[0], facets):
        part = sel if fv is None else sel[sel[spec.facet] == fv]
        for (h, lv), g in part.groupby([spec.hue, "level"], sort=False):
            g = g.sort_values(spec.x)
            ax.plot(g[spec.x].to_numpy(dtype=float), g[ycol].to_numpy(dtype=float), marker=mk[h],
                    linestyle=ls[lv], color=colours[h], label=f"{h}, {lv}" if len(levels) > 1 else f"{h}")
        if ycol == "ratio":
            ax.axhline(1.0, color="grey", linewidth=0.9, zorder=0)
            ax.text(ax.get_xlim()[0], 1.0, f" {ref}", va="bottom", ha="left", color="grey", fontsize=8)
        ax.set_xlabel(_label(spec.x))
        if fv is not None:
            unit = _unit(spec.facet)
            ax.set_title(f"{spec.facet} = {fv:g}{' ' + unit if unit else ''}"
                         if isinstance(fv, (int, float, np.number)) else f"{spec.facet} = {fv}", fontsize=10)
        ax.grid(True, alpha=0.3)
    unit = sel["unit"].iloc[0] if "unit" in sel and len(sel) else ""
    ylabel = {"ratio": f"{spec.metric} / {ref}", "change": f"{spec.metric} - {ref} [{unit}]",
              "value": f"{spec.metric} [{unit}]"}[ycol]
    axes[0][0].set_ylabel(f"{ylabel}\n({spec.region}, {spec.relation})")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(spec.title or f"{meta['name']}: {spec.metric} of {spec.region} ({spec.relation})", fontsize=11)
    fig.tight_layout()
    png = os.path.join(out, "plots", f"{spec.name}.png")
    try:
        with atomic_path(png) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return png, table


# ------------------------------------------------------------------------------------------------
# Tables of a result and report.md


def key_metrics(result):
    """A few headline numbers of a result as (label, value, unit) rows."""
    rows = []
    seg = result.value
    treated = getattr(result, "treated_level", None)
    levels = list(result.segment.levels)
    for level in levels:
        tag = " (treated)" if level == treated else ""
        for metric, region, unit, note in (("von_mises_p95", "bone", "MPa", "bone"),
                                           ("factor_of_risk_yield", "vertebra", "", "in situ, disc-loaded")):
            try:
                v = seg(metric, level, region)
            except Exception:  # noqa: BLE001 - metric not reported for this level
                continue
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                rows.append((f"{level}{tag} {metric} ({note})", v, unit))
    try:
        rows.append(("segment axial_stiffness", seg("axial_stiffness"), "N/mm"))
        rows.append(("segment rotation_flexion", seg("rotation_flexion"), "deg"))
    except Exception:  # noqa: BLE001
        pass
    return rows


def print_tables(tables):
    """Print each table (name -> DataFrame, None skipped) rounded to 3 decimals."""
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        for name, table in tables.items():
            if table is None:
                continue
            print(f"\n{name}:")
            print(table.round(3).to_string())


def markdown_table(table):
    """A DataFrame as a GitHub Markdown table (index as the first columns; column levels joined by a space)."""
    import pandas as pd

    if table.columns.name and not isinstance(table.columns, pd.MultiIndex):
        table = table.rename(columns=lambda c: f"{table.columns.name} = {c}")
    flat = table.reset_index() if not isinstance(table.index, pd.RangeIndex) else table.copy()
    def header(col):
        if not isinstance(col, tuple):
            return str(col)
        parts = [str(c) for c in col if str(c) not in ("", "nan")]
        if len(parts) == 2 and parts[1] != "-" and len(table.columns.names) == 2 and table.columns.names[1] == "unit":
            return f"{parts[0]} [{parts[1]}]"
        return " ".join(parts)

    flat.columns = [header(col) for col in flat.columns]

    def cell(v):
        if isinstance(v, float):
            return "" if v != v else f"{v:.4g}"
        return str(v).replace("|", "\\|")

    rows = ["| " + " | ".join(flat.columns) + " |", "|" + "---|" * len(flat.columns)]
    rows += ["| " + " | ".join(cell(v) for v in rec) + " |" for rec in flat.itertuples(index=False)]
    return "\n".join(rows)


def write_report_md(d, lines, tables, plots, figures):
    """Write ``d/report.md``: the ``lines`` as a list, the ``tables`` (title -> DataFrame) and links to the
    ``plots`` and ``figures`` (paths relative to ``d``). Returns its path."""
    from ._version import __version__

    name = os.path.basename(os.path.abspath(d))
    rel = lambda p: os.path.relpath(os.path.abspath(p), os.path.abspath(d)).replace(os.sep, "/")  # noqa: E731
    out = [f"# {name}", "", f"Written by `vertebrafe report` (vertebrafe {__version__}).", ""]
    out += [f"- {line}" for line in lines] + ([""] if lines else [])
    for title, table in tables.items():
        out += [f"## {title}", "", markdown_table(table), ""]
    if plots:
        out += ["## Plots", ""] + [f"![{os.path.basename(p)}]({rel(p)})\n" for p in plots]
    if figures:
        out += ["## Figures", "", "Mid-sagittal cut (left half, seen from the right; anterior to the right).", ""]
        out += [f"![{os.path.basename(p)}]({rel(p)})\n" for p in figures]
    path = os.path.join(d, "report.md")
    write_text(path, "\n".join(out))
    return path


def case_report(d):
    """The per-level table of a single case result in ``d`` and ``d/report.png`` (bone von Mises p95 per
    level). Returns ``(png path, table)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    m = pd.read_csv(os.path.join(d, "metrics.csv"))
    keep = m[m["metric"].isin(["von_mises_mean", "von_mises_p95", "min_principal_stress_p05",
                               "factor_of_risk_yield", "pressure", "height_change"])
             & m["region"].isin(["bone", "vertebra", "nucleus", "disc"])]
    table = keep.pivot_table(index="level", columns=["metric", "unit"], values="value", aggfunc="first",
                             sort=False)
    sel = m[(m["metric"] == "von_mises_p95") & (m["region"] == "bone")]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(sel["level"], sel["value"], color="C0")
    ax.set_ylabel("von Mises p95 of bone [MPa]")
    ax.set_title(os.path.basename(os.path.abspath(d)))
    fig.tight_layout()
    png = os.path.join(d, "report.png")
    try:
        with atomic_path(png) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return png, table
