"""Command-line interface: ``vertebrafe``.

The interface is a thin layer over the library. ``main(argv)`` parses the
arguments, dispatches to a subcommand handler and returns a process exit
status; it never calls ``sys.exit`` itself so that it can be tested
in-process.

Subcommands are registered in :data:`SUBCOMMANDS`: each entry maps a name to
``(help, configure, run)`` where ``configure(parser)`` adds the subcommand's
arguments and ``run(args) -> int`` executes it.
"""
from __future__ import annotations

import argparse
import platform
import sys
import traceback
from typing import Callable, Dict, Optional, Sequence, Tuple

from . import __version__, viz
from .errors import VertebrafeError

DESCRIPTION = """\
vertebrafe: finite-element solver for vertebral biomechanics
(osteoporotic vertebral compression fractures, vertebroplasty and balloon
kyphoplasty, adjacent-level stress). Units: mm, N, MPa."""

EPILOG = """\
examples:
  vertebrafe run cases/bkp-partial.toml -o out/bkp          one case: result.vtu, metrics.csv, case.json
  vertebrafe run cases/vp-unipedicular.toml -o out/vp --set bone.bmd=80 --set segment.element_size=3
  vertebrafe mesh cases/osteoporotic-wedge-nsm.toml -o nsm.vtu   mesh only (after fracture and treatment)
  vertebrafe study cases/adjacent-risk.toml -o out/risk     parameter study on all local cores
  vertebrafe study cases/adjacent-risk.toml -o out/risk --scheduler tcp://host:8786   on a Dask cluster
  vertebrafe report out/risk                                tables, plots and field figures of a run or study
  vertebrafe view out/bkp --field von_mises                 picture of a result (needs pyvista)
  vertebrafe info                                           versions of vertebrafe and its dependencies
  python -m vertebrafe --help                               the same interface without the console script

case files: docs/cases.md; command line: docs/cli.md. Exit status 0 on success, 1 on failure (one-line
reason; --debug for the traceback), 2 for usage errors.
"""

ConfigureFn = Callable[[argparse.ArgumentParser], None]
RunFn = Callable[[argparse.Namespace], int]


def _configure_info(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def _run_info(args: argparse.Namespace) -> int:
    """Print the versions of vertebrafe, Python and the key dependencies."""
    import importlib

    print(f"vertebrafe {__version__}")
    print(f"python     {platform.python_version()} ({sys.executable})")
    for name in ("numpy", "scipy", "numba", "pyamg", "meshio", "pyvista"):
        try:
            module = importlib.import_module(name)
            version = getattr(module, "__version__", "?")
        except ImportError:
            version = "not installed"
        print(f"{name:<10} {version}")
    return 0


# ------------------------------------------------------------------------------------------------
# run, mesh, study, report


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors; no progress bars")
    group.add_argument("-v", "--verbose", action="store_true", help="print every stage and case")


def _add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="run a model whose estimated memory exceeds the available memory")


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change a case key before validation, e.g. --set bone.bmd=60 "
                             "--set treatment.kind=vertebroplasty (VALUE is a TOML value; bare words are "
                             "strings); repeatable")


def _parse_overrides(items) -> dict:
    """``["bone.bmd=60", "fracture.kind=crush"]`` -> ``{"bone.bmd": 60, "fracture.kind": "crush"}``."""
    from .case import tomllib
    from .errors import InputError

    out = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or "." not in key:
            raise InputError(f"--set {item!r}: expected KEY=VALUE with KEY = 'section.key', e.g. bone.bmd=60")
        text = text.strip()
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[key] = value
    return out


def _echo(args, message: str, verbose: bool = False) -> None:
    if getattr(args, "quiet", False) or (verbose and not getattr(args, "verbose", False)):
        return
    print(message)


def _check_case_file(path: str) -> None:
    from .case import load_toml
    from .errors import InputError

    raw = load_toml(path)
    if "study" in raw and "segment" not in raw:
        raise InputError(f"{path}: is a study file ([study]); run it with 'vertebrafe study {path} -o DIR'")


def _configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", metavar="CASE.toml", help="case file (docs/cases.md)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="output folder, new or empty: result.vtu, metrics.csv/json, case.json, case.toml")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier 'vertebrafe run' output in DIR (only the files it wrote; "
                             "other files are kept)")
    _add_force(parser)
    _add_set(parser)
    _add_verbosity(parser)


def _key_metrics(result):
    """A few headline numbers of a result as (label, value, unit) rows."""
    import math

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


def _run_run(args: argparse.Namespace) -> int:
    from .case import load_case, run_case, save_result
    from .outputs import check_output_dir

    _check_case_file(args.case)
    case = load_case(args.case, _parse_overrides(args.overrides))
    check_output_dir(args.output, "run", overwrite=args.overwrite)
    log = (lambda m: print(m, file=sys.stderr)) if args.verbose else None
    _echo(args, f"case {case.name} ({case.id}): {'-'.join([case.segment.levels[0], case.segment.levels[-1]])}, "
                f"element size {case.segment.element_size:g} mm", verbose=True)
    result = run_case(case, progress=not args.quiet, log=log, force=args.force)
    out = save_result(result, case, args.output, overwrite=args.overwrite)
    info = result.solution.info
    _echo(args, f"{case.name} ({case.id}): {info.get('dofs', '?')} dofs, solver {info.get('solver')} "
                f"({info.get('iterations')} iterations, residual {info.get('residual', float('nan')):.1e}), "
                f"{result.case_timings['total_s']:.1f} s")
    for label, value, unit in _key_metrics(result):
        _echo(args, f"  {label:<56} {value:10.4g} {unit}")
    from .outputs import read_marker
    _echo(args, f"wrote {args.output}/ ({', '.join(sorted(read_marker(out)['files']))})")
    return 0


def _configure_mesh(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", metavar="CASE.toml", help="case file (docs/cases.md); [load] is validated "
                        "but not used")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.vtu",
                        help="mesh file (.vtu, or any extension meshio writes) with region/level tags, "
                             "node and face sets, cement and damage fields")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    _add_force(parser)
    _add_set(parser)
    _add_verbosity(parser)


def _run_mesh(args: argparse.Namespace) -> int:
    import os

    from .case import build_segment, load_case
    from .errors import InputError

    if not args.output.strip() or os.path.isdir(args.output):
        raise InputError(f"-o/--output = {args.output!r}; allowed: the path of a mesh file")
    if os.path.lexists(args.output) and not args.overwrite:
        raise InputError(f"-o/--output = {args.output!r} exists; allowed: a new file, or --overwrite to replace it")
    _check_case_file(args.case)
    case = load_case(args.case, _parse_overrides(args.overrides))
    stages = []
    seg = build_segment(case, progress=stages.append, force=args.force)
    parent = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(parent, exist_ok=True)
    seg.save(args.output)
    _echo(args, f"{case.name}: stages {', '.join(stages)}", verbose=True)
    _echo(args, f"wrote {args.output}: {seg.mesh.n_cells} cells, {seg.mesh.n_points} nodes "
                f"({', '.join(seg.levels)}; element size {case.segment.element_size:g} mm)")
    return 0


def _configure_study(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="STUDY.toml", help="study file: base case and sweep (docs/cases.md)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="study directory: summary.csv, plots/, cases/<id>/; rerun to resume")
    parser.add_argument("--workers", "-j", type=int, default=None, metavar="N",
                        help="local worker processes, one thread each (default: number of CPUs)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--dry-run", action="store_true", help="list the cases (id, variant, parameters) and exit")
    parser.add_argument("--no-retry-failed", dest="retry_failed", action="store_false",
                        help="keep the errors of cases that failed in an earlier run instead of rerunning them")
    _add_force(parser)
    _add_set(parser)
    _add_verbosity(parser)


def _run_study(args: argparse.Namespace) -> int:
    from .errors import InputError, VertebrafeError
    from .study import case_status, load_study, run_study

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers = {args.workers}; allowed: an integer >= 1")
    study = load_study(args.study, _parse_overrides(args.overrides))
    if args.dry_run:
        for sc in study.cases:
            st = case_status(args.output, sc.id) or {}
            print(f"{sc.id}  {st.get('status', '-'):<6} {sc.name:<28} {sc.params}")
        print(f"{len(study.cases)} cases")
        return 0
    _echo(args, f"study {study.name}: {len(study.cases)} cases -> {args.output}")
    log = (lambda m: print(m, file=sys.stderr)) if args.verbose else None
    run = run_study(study, args.output, workers=args.workers, scheduler=args.scheduler,
                    progress=not args.quiet, log=log, retry_failed=args.retry_failed, force=args.force)
    _echo(args, run.describe())
    if run.summary.get("summary"):
        _echo(args, f"summary: {run.summary['summary']}")
    for png in run.summary.get("plots", []):
        _echo(args, f"plot:    {png}")
    if not args.quiet:
        _print_tables(run.summary.get("tables", {}))
    if run.failed:
        raise VertebrafeError(f"{len(run.failed)} of {len(study.cases)} cases failed (first: "
                              f"{next(iter(run.failed.values()))}); errors in {args.output}/failures.csv; "
                              "rerun the same command to retry them")
    return 0


def _print_tables(tables) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        for name, table in tables.items():
            if table is None:
                continue
            print(f"\n{name}:")
            print(table.round(3).to_string())


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="output of 'vertebrafe study' or 'vertebrafe run'")
    parser.add_argument("--no-figures", dest="figures", action="store_false",
                        help="skip the rendered figures (DIR/figures/*.png; they need off-screen rendering)")
    _add_verbosity(parser)


def _run_report(args: argparse.Namespace) -> int:
    """Tables and plots (as before), figures of the fields in ``DIR/figures/`` and ``DIR/report.md``."""
    import os

    from .errors import InputError

    d = args.directory
    if os.path.exists(os.path.join(d, "study.json")):
        from .study import summarize

        paths = summarize(d)
        import pandas as pd

        fails = pd.read_csv(paths["failures"]) if os.path.exists(paths["failures"]) else None
        lines = []
        if paths.get("summary"):
            s = pd.read_csv(paths["summary"])
            lines.append(f"{s['case_id'].nunique()} finished cases, {len(s)} rows in summary.csv")
            _echo(args, f"{d}: {s['case_id'].nunique()} finished cases, {len(s)} rows -> {paths['summary']}")
        if fails is not None and len(fails):
            lines.append(f"{len(fails)} cases not finished or failed (failures.csv)")
            _echo(args, f"{len(fails)} cases not finished or failed (see {paths['failures']}):")
            for _, row in fails.head(10).iterrows():
                _echo(args, f"  {row['id']} {row['name']}: {row['status']} {row['error'] or ''}")
        for png in paths.get("plots", []):
            _echo(args, f"plot: {png}")
        tables = {k: v for k, v in paths.get("tables", {}).items() if v is not None}
        if not args.quiet:
            _print_tables(tables)
        figures = _report_figures(args, d)
        _write_report_md(d, lines, {name: t.round(3) for name, t in tables.items()}, paths.get("plots", []),
                         figures, args)
        return 0
    if os.path.exists(os.path.join(d, "metrics.csv")):
        png, table = _report_run(d)
        _echo(args, f"plot: {png}")
        figures = _report_figures(args, d)
        _write_report_md(d, [], {"per level": table.round(4)}, [png], figures, args)
        return 0
    raise InputError(f"{d}: neither a study directory (study.json) nor a case result (metrics.csv)")


def _report_figures(args, d: str) -> list:
    """Render the figures of ``vertebrafe.viz.report_figures`` into ``d/figures/`` and print their paths; when
    they cannot be drawn (no off-screen rendering, no result.vtu, --no-figures) print one line saying why."""
    if not args.figures:
        _echo(args, "figures skipped: --no-figures")
        return []
    notes = []
    try:
        figures = [str(p) for p in viz.report_figures(d, notes=notes)]
    except (VertebrafeError, OSError) as exc:
        notes.append(f"figures skipped: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        figures = []
    for note in notes:
        _echo(args, note)
    for png in figures:
        _echo(args, f"figure: {png}")
    return figures


def _markdown_table(table) -> str:
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


def _write_report_md(d: str, lines, tables, plots, figures, args) -> None:
    """Write ``d/report.md``: the tables, and links to the plots and figures (paths relative to ``d``)."""
    import os

    name = os.path.basename(os.path.abspath(d))
    rel = lambda p: os.path.relpath(os.path.abspath(p), os.path.abspath(d)).replace(os.sep, "/")  # noqa: E731
    out = [f"# {name}", "", f"Written by `vertebrafe report` (vertebrafe {__version__}).", ""]
    out += [f"- {line}" for line in lines] + ([""] if lines else [])
    for title, table in tables.items():
        out += [f"## {title}", "", _markdown_table(table), ""]
    if plots:
        out += ["## Plots", ""] + [f"![{os.path.basename(p)}]({rel(p)})\n" for p in plots]
    if figures:
        out += ["## Figures", "", "Mid-sagittal cut (left half, seen from the right; anterior to the right).", ""]
        out += [f"![{os.path.basename(p)}]({rel(p)})\n" for p in figures]
    path = os.path.join(d, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(out))
    _echo(args, f"report: {path}")


def _report_run(d: str):
    """Print the per-level table of a single case and write ``report.png`` (bone von Mises p95 per level).
    Returns ``(png path, table)``."""
    import os

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
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.round(4).to_string())
    sel = m[(m["metric"] == "von_mises_p95") & (m["region"] == "bone")]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(sel["level"], sel["value"], color="C0")
    ax.set_ylabel("von Mises p95 of bone [MPa]")
    ax.set_title(os.path.basename(os.path.abspath(d)))
    fig.tight_layout()
    png = os.path.join(d, "report.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png, table


#: name -> (one-line help, configure(parser), run(args) -> exit status). A plain registry: other modules
#: add their commands by inserting an entry (``vertebrafe.viz`` provides ``view``).
SUBCOMMANDS: Dict[str, Tuple[str, ConfigureFn, RunFn]] = {
    "run": ("run one case file and write its results", _configure_run, _run_run),
    "study": ("run a parameter study (process pool or Dask cluster), resumable", _configure_study, _run_study),
    "mesh": ("mesh a case (segment, fracture, treatment) and write the mesh", _configure_mesh, _run_mesh),
    "report": ("summary tables, plots and field figures (figures/, report.md) of a finished run or study",
               _configure_report, _run_report),
    "view": (viz.VIEW_HELP, viz.configure_view, viz.run_view),
    "info": ("print versions of vertebrafe and its dependencies", _configure_info, _run_info),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one subparser per entry of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="vertebrafe",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vertebrafe {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when a command fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, configure, run) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        configure(sub)
        sub.set_defaults(_run=run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Returns 0 on success, 1 when a command fails (one-line message on stderr,
    full traceback with ``--debug``), 2 for usage errors, as argparse does.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)

    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 0
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print("vertebrafe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI boundary reports every failure
        if args.debug:
            traceback.print_exc()
        kind = "error" if isinstance(exc, VertebrafeError) else f"error ({type(exc).__name__})"
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"vertebrafe: {kind}: {message}", file=sys.stderr)
        if not args.debug:
            print("vertebrafe: rerun with --debug for the full traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
