"""Reports: summary tables and plots of a study directory, and the tables of a case result."""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import textwrap
from dataclasses import dataclass
from typing import Optional

from . import labels
from .errors import InputError
from .outputs import check_name
from .io.atomic import atomic_path, write_text
from .io.studydir import case_dir, case_status, damage, read_study

__all__ = ["PlotSpec", "summarize", "warm_plotting", "study_figure", "subtitle", "key_metrics", "print_tables", "markdown_table", "write_report_md", "case_report"]

@dataclass(frozen=True)
class PlotSpec:
    """One summary plot: ``y`` (``"ratio"`` against the reference or ``"value"``) of ``metric`` in
    ``region`` of the levels with ``relation`` (``"adjacent"`` = both adjacent vertebrae, or a relation
    such as ``treated``, ``adjacent_superior``, ``disc_superior``, ``segment``, or a level name), against
    the swept key ``x``, one line per ``hue`` value, one panel per ``facet`` value. Where several cases
    share a point (a setting repeated with other, unplotted values), the mean is drawn with its ``spread``
    (``"range"``: min-max, ``"std"``: +-1 SD, ``"none"``). ``formats``: comma list of png, svg, pdf."""

    metric: str
    x: str
    region: str = "body"
    relation: str = "adjacent"
    y: str = "ratio"
    hue: str = "variant"
    facet: Optional[str] = None
    title: str = ""
    name: str = ""
    spread: str = "range"
    formats: str = "png,svg,pdf"


#: file formats of study figures (``PlotSpec.formats``, a comma list; PNG always)
FIGURE_FORMATS = ("png", "svg", "pdf")
#: how repeated settings are drawn (``PlotSpec.spread``): mean with min-max range, mean +- 1 SD, or the mean only
SPREADS = ("range", "std", "none")


# ------------------------------------------------------------------------------------------------
# Summary and plots


def _relation_map(case_dict):
    from .post.compare import relations
    levels = case_dict["segment"]["levels"]
    treated = case_dict.get("treatment", {}).get("level") or case_dict.get("fracture", {}).get("level")
    return relations(levels, treated)


def summarize(out, executor=None):
    """Write ``summary.csv``, ``failures.csv`` and the plots of the study in ``out`` (from ``study.json``
    and the finished case directories). ``executor``: a ``concurrent.futures`` executor of other processes
    (a study's idle workers) that draws all plots but the first while this process draws that one. Only
    cases whose files verify against the checksums of their ``status.json`` enter the summary; damaged ones
    are listed in ``failures.csv`` with status ``damaged``. Returns ``{"summary": path, "failures": path,
    "plots": [paths], "tables": {plot name: DataFrame pivot}, "notes": [plots that could not be drawn, and
    why], "finished": cases in the summary, "rows": rows of the summary, "failed": [{"id", "name", "status",
    "error"} of the cases not in it]}``."""
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
            df.insert(3 + i, k, _column_value(c["params"].get(k, _lookup(c["case"], k))))
        frames.append(df)
    fail_df = pd.DataFrame(failures, columns=["id", "name", "variant", "status", "error"] + params)
    paths = {"plots": [], "tables": {}, "notes": [], "finished": len(frames), "rows": 0,
             "failed": [{k: f[k] for k in ("id", "name", "status", "error")} for f in failures]}
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
    paths["summary"], paths["rows"] = os.path.join(out, "summary.csv"), len(summary)
    write_text(paths["summary"], summary.to_csv(index=False))
    if meta.get("plots"):
        os.makedirs(os.path.join(out, "plots"), exist_ok=True)
        for spec, (png, table) in zip(meta["plots"], _plots(summary, meta["plots"], out, meta, executor)):
            if png:
                paths["plots"].append(png)
                paths["tables"][spec["name"]] = table
            else:
                paths["notes"].append(f"plot {spec['name']}: no rows of metric {spec['metric']!r} in region "
                                      f"{spec['region']!r} ({spec['relation']}) among the finished cases; not drawn")
    return paths


def warm_plotting():
    """Pay the first-use costs of the study plots in this process: import pandas and matplotlib (Agg) and
    draw a small constrained-layout figure in every figure format (in memory; nothing is written). A study
    runs it in its parent and idle workers while the last cases run (:func:`vertebrafe.study.run_study`),
    so that :func:`summarize` only draws."""
    import io

    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot  # noqa: F401 - the import is the warm-up
    import pandas  # noqa: F401
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.0, 2.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0.0, 1.0], [0.0, 1.0], label="a")
    ax.set_title("a")
    ax.legend()
    for fmt in FIGURE_FORMATS:
        fig.savefig(io.BytesIO(), dpi=150, format=fmt)


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


def _column_value(value):
    """A parameter as one summary cell: a sequence (``treatment.offset``, mm) as its numbers in brackets."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in value) + "]"
    return value


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


def _field(key):
    """The case-schema Field of a dotted key, nested tables included (``load.muscles.erector_spinae.L1`` is
    the ``erector_spinae`` field); None if unknown."""
    from .case import SCHEMA
    section, *names = key.split(".")
    fields, found = SCHEMA.get(section, ()), None
    for name in names:
        if found is not None and found.kind == "per_level":
            return found
        found = next((f for f in fields if f.name == name), None)
        if found is None:
            return None
        fields = found.fields
    return found


def _unit(key):
    """Unit of a dotted case key from the case schema ('' if none)."""
    f = _field(key)
    return f.unit if f is not None else ""


def _label(key):
    return labels.parameter(key, _unit(key))


def _fmt(v, unit=""):
    unit = labels.unit(unit)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, (list, tuple)):
        v = "-".join(map(str, v)) if all(isinstance(x, str) for x in v) else list(v)
    sep = "\u00a0"                                     # value and unit stay on one line when titles wrap
    return f"{v:g}{sep + unit if unit else ''}" if isinstance(v, (int, float)) and not isinstance(v, bool) \
        else f"{v}{sep + unit if unit and not isinstance(v, str) else ''}"


#: keys shown in a figure's subtitle when every plotted case shares their value
SUBTITLE_KEYS = ("segment.levels", "bone.bmd", "fracture.level", "fracture.grade", "fracture.height_loss",
                 "treatment.kind", "treatment.volume", "treatment.fill", "treatment.approach",
                 "treatment.restoration", "segment.element_size")
_LOAD_KEYS = ("compression", "flexion", "extension", "lateral_bending", "axial_rotation", "anterior_shear",
              "lateral_shear")


def _load_text(load):
    """A [load] section in words: the preset with its values, and the explicit values."""
    from .loads import LOAD_RANGES, PRESETS
    parts = []
    if load.get("preset"):
        p = PRESETS.get(load["preset"])
        parts.append(load["preset"].replace("_", " ") + (f" ({p.load.describe()})" if p is not None else ""))
    for k in _LOAD_KEYS:
        if load.get(k):
            parts.append(f"{_fmt(load[k], LOAD_RANGES[k][2])} {labels.PARAMETERS['load.' + k].split(' moment')[0]}")
    if load.get("follower"):
        parts.append("follower")
    for x in load.get("levels", ()):
        parts.append(f"{x.get('name') or 'load'} on {x['level']} (F {_fmt(list(x['force']), 'N')}, "
                     f"M {_fmt(list(x['moment']), 'N m')})")
    muscles = load.get("muscles", {})
    for name, forces in muscles.items():
        if name != "balance":
            parts += [f"{labels.parameter_name(f'load.muscles.{name}.{v}')} {_fmt(f, 'N')}" for v, f in forces.items()]
    if muscles.get("balance"):
        parts.append("sagittal moment balanced by muscles")
    return ", ".join(parts) or "no load"


def subtitle(cases, varying=()):
    """The load and the settings shared by ``cases`` (study.json case records) in one line, leaving out
    the keys in ``varying`` (the plot's axes, hue and facet). A setting only some cases have (a variant's
    own, such as a kyphoplasty's restoration) is named with those cases' variants."""
    if not cases:
        return ""
    loads = {_load_text(c["case"].get("load", {})) for c in cases}
    parts = ["load: " + loads.pop()] if len(loads) == 1 else []
    for key in SUBTITLE_KEYS:
        if key in varying:
            continue
        having = [(c.get("variant"), _lookup(c["case"], key)) for c in cases]
        having = [(v, x) for v, x in having if x is not None]
        given = {json.dumps(x) for _, x in having}
        if len(given) == 1:
            v = json.loads(given.pop())
            text = f"{labels.parameter_name(key)} {_fmt(v, _unit(key))}"
            if len(having) < len(cases):
                text += f" ({', '.join(dict.fromkeys(str(v) for v, _ in having))})"
            parts.append(text)
    return "; ".join(parts)


def _is_integer_axis(key, values):
    f = _field(key)
    if f is not None and f.kind == "int":
        return True
    try:
        return all(float(v).is_integer() for v in values) and len(values) > 0
    except (TypeError, ValueError):
        return False


def _save_figure(fig, out, name, formats):
    """Write ``plots/<name>.<fmt>`` for each format (atomically). Returns the paths, PNG first.

    The figure has a constrained layout, so it is saved as laid out (no ``bbox_inches="tight"``, whose
    extra draw pass doubled the cost of every file)."""
    paths = []
    for fmt in formats:
        path = os.path.join(out, "plots", f"{name}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, format=fmt)
        paths.append(path)
    return paths


def _formats(spec):
    fm = [f.strip().lower() for f in spec.formats.split(",") if f.strip()]
    bad = sorted(set(fm) - set(FIGURE_FORMATS))
    if bad or "png" not in fm:
        raise InputError(f"plot {spec.name!r}: formats = {spec.formats!r}; allowed a comma list of "
                         f"{', '.join(FIGURE_FORMATS)} that includes png")
    return ["png"] + [f for f in fm if f != "png"]


def _plots(summary, specs, out, meta, executor=None):
    """:func:`_plot` of each of the plot records ``specs``, in order; all but the first are drawn by
    ``executor`` while this process draws the first (each where ``executor`` is None or broken)."""
    from concurrent.futures import BrokenExecutor

    futures = [None]
    for spec in specs[1:]:
        try:
            futures.append(executor.submit(_plot, summary, PlotSpec(**spec), out, meta) if executor else None)
        except (BrokenExecutor, RuntimeError):            # a worker died, or the pool was shut down
            futures.append(None)
    done = []
    for spec, fut in zip(specs, futures):
        try:
            done.append(fut.result() if fut is not None else None)
        except BrokenExecutor:
            done.append(None)
        if done[-1] is None:
            done[-1] = _plot(summary, PlotSpec(**spec), out, meta)
    return done


def _plot(summary, spec, out, meta):
    """Write the figure of ``spec`` (PNG and its other formats) and its pivot table under ``out/plots``.
    Returns ``(png path, pivot table)`` or ``(None, None)`` when nothing matches."""
    import matplotlib.pyplot as plt

    formats = _formats(spec)
    fig, table = study_figure(summary, spec, meta)
    if fig is None:
        return None, None
    write_text(os.path.join(out, "plots", f"{spec.name}.csv"), table.to_csv())
    try:
        paths = _save_figure(fig, out, spec.name, formats)
    finally:
        plt.close(fig)
    return paths[0], table


def study_figure(summary, spec, meta):
    """The matplotlib figure of one :class:`PlotSpec` over a study summary (DataFrame of ``summary.csv``)
    and its ``study.json`` record ``meta``: labels with units (:mod:`vertebrafe.labels`), the load and
    the shared settings in the subtitle, one legend outside the panels, integer ticks for integer keys,
    the reference as a legend entry, mean and range (or +-1 SD) where a setting is repeated. Returns
    ``(figure, pivot table)``, ``(None, None)`` when no row matches."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    sel = _select(summary, spec)
    if sel.empty or spec.x not in sel.columns:
        return None, None
    if spec.spread not in SPREADS:
        raise InputError(f"plot {spec.name!r}: spread = {spec.spread!r}; allowed {list(SPREADS)}")
    ycol = spec.y
    ref = meta.get("reference")
    if ycol != "value" and ref:
        sel = sel[sel["variant"] != ref]
    facets = [None] if not spec.facet else sorted(sel[spec.facet].dropna().unique())
    index = [spec.facet] if spec.facet else []
    table = sel.pivot_table(index=index + [spec.hue, "level"], columns=spec.x, values=ycol, aggfunc="mean")
    fig, axes = plt.subplots(1, len(facets), figsize=(3.6 * len(facets) + 1.0, 3.6), sharey=True, squeeze=False,
                             layout="constrained")
    markers = itertools.cycle("os^Dv<>")
    hues = list(dict.fromkeys(sel[spec.hue].tolist()))
    mk = {h: next(markers) for h in hues}
    colours = {h: f"C{i}" for i, h in enumerate(hues)}
    styles = itertools.cycle(["-", "--", ":", "-."])
    levels = list(dict.fromkeys(sel["level"].tolist()))
    ls = {lv: next(styles) for lv in levels}
    handles = {}
    repeated = False
    for ax, fv in zip(axes[0], facets):
        part = sel if fv is None else sel[sel[spec.facet] == fv]
        for (h, lv), g in part.groupby([spec.hue, "level"], sort=False):
            stats = g.groupby(spec.x)[ycol].agg(["mean", "min", "max", "std", "count"]).sort_index()
            x = stats.index.to_numpy(dtype=float)
            y = stats["mean"].to_numpy(dtype=float)
            label = f"{h}, {lv}" if len(levels) > 1 else f"{h}"
            line, = ax.plot(x, y, marker=mk[h], linestyle=ls[lv], color=colours[h], label=label)
            if spec.spread != "none" and (stats["count"] > 1).any():
                repeated = True
                if spec.spread == "range":
                    err = [y - stats["min"].to_numpy(float), stats["max"].to_numpy(float) - y]
                else:
                    err = np.nan_to_num(stats["std"].to_numpy(float))
                ax.errorbar(x, y, yerr=err, fmt="none", ecolor=colours[h], capsize=3, linewidth=0.9)
            handles.setdefault(label, line)
        if ycol == "ratio":
            refline = ax.axhline(1.0, color="grey", linewidth=0.9, zorder=0)
            handles.setdefault(f"{ref} (reference)", refline)
        ax.set_xlabel(_label(spec.x))
        if _is_integer_axis(spec.x, sel[spec.x].dropna().tolist()):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if fv is not None:
            ax.set_title(f"{labels.parameter_name(spec.facet)} {_fmt(fv, _unit(spec.facet))}",
                         fontsize=10)
        ax.grid(True, alpha=0.3)
    unit = sel["unit"].iloc[0] if "unit" in sel and len(sel) else ""
    name = labels.metric(spec.metric)
    ylabel = {"ratio": f"{name} / {ref}", "change": labels.with_unit(f"{name} - {ref}", unit),
              "value": labels.metric(spec.metric, unit)}[ycol]
    axes[0][0].set_ylabel(f"{ylabel}\n({spec.region}, {labels.relation(spec.relation)})")
    names = list(handles)
    if repeated:
        names.append("mean, " + ("range" if spec.spread == "range" else "+-1 SD") + " of repeats")
        handles[names[-1]] = axes[0][0].errorbar([], [], yerr=[], fmt="none", ecolor="grey", capsize=3)
    fig.legend([handles[n] for n in names], names, loc="outside right center", fontsize=8, frameon=False)
    cases = {c["id"]: c for c in meta.get("cases", [])}
    shown = [cases[i] for i in dict.fromkeys(sel["case_id"]) if i in cases]
    title = spec.title or f"{meta['name']}: {name} of the {labels.relation(spec.relation)}"
    sub = subtitle(shown, varying={spec.x, spec.facet, spec.hue})
    width = int(fig.get_figwidth() * 13)                          # characters per line at 9-10 pt
    fig.suptitle("\n".join(textwrap.wrap(title, width) + textwrap.wrap(sub, int(width * 1.1))), fontsize=9)
    return fig, table


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
        for metric, region, unit, note in (("von_mises_p95", "body", "MPa", "whole vertebra"),
                                           ("factor_of_risk", "vertebra", "", "load / plate strength"),
                                           ("overload_index_yield", "vertebra", "",
                                            "in situ, disc-loaded; a comparison measure")):
            try:
                v = seg(metric, level, region)
            except Exception:  # noqa: BLE001 - metric not reported for this level
                continue
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                rows.append((f"{level}{tag} {metric} ({note})", v, unit))
    if getattr(result.segment, "posterior", None) is not None:
        for disc in result.segment.discs:
            for metric, region, unit, label in (("facet_force", "facet_left", "N", "facet force, left"),
                                                ("facet_force", "facet_right", "N", "facet force, right"),
                                                ("load_share", "posterior", "", "posterior-column load share")):
                try:
                    v = seg(metric, disc, region)
                except Exception:  # noqa: BLE001 - metric not reported for this level
                    continue
                if not (isinstance(v, float) and math.isnan(v)):
                    rows.append((f"{disc} {label}", v, unit))
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
    """The per-level table of a single case result in ``d`` and ``d/report.png`` (whole-vertebra, region body, von Mises p95 per
    level). Returns ``(png path, table)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    m = pd.read_csv(os.path.join(d, "metrics.csv"))
    keep = m[m["metric"].isin(["von_mises_mean", "von_mises_p95", "min_principal_stress_p05",
                               "factor_of_risk", "pressure", "height_change"])
             & m["region"].isin(["body", "vertebra", "nucleus", "disc"])]
    table = keep.pivot_table(index="level", columns=["metric", "unit"], values="value", aggfunc="first",
                             sort=False)
    sel = m[(m["metric"] == "von_mises_p95") & (m["region"] == "body")]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(sel["level"], sel["value"], color="C0")
    ax.set_ylabel("von Mises p95 of the vertebra [MPa]")
    ax.set_title(os.path.basename(os.path.abspath(d)))
    fig.tight_layout()
    png = os.path.join(d, "report.png")
    try:
        with atomic_path(png) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return png, table
