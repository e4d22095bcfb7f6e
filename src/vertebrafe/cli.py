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
import shlex
import traceback
import warnings
from typing import Callable, Dict, Optional, Sequence, Tuple

from ._version import __version__
from .errors import RESULT_WARNINGS, VertebrafeError

DESCRIPTION = """\
vertebrafe: finite-element solver for vertebral biomechanics
(osteoporotic vertebral compression fractures, vertebroplasty and balloon
kyphoplasty, adjacent-level stress). Units: mm, N, MPa."""

EPILOG = """\
examples:
  vertebrafe run cases/bkp-partial.toml -o out/bkp          one case: result.vtu, metrics.csv, case.json
  vertebrafe run cases/vp-unipedicular.toml -o out/vp --set bone.bmd=80 --set segment.element_size=3
  vertebrafe mesh cases/osteoporotic-wedge-nsm.toml -o nsm.vtu   mesh only (after fracture and treatment)
  vertebrafe export cases/healthy-intact.toml -o model.inp --formulation full   the model for CalculiX
  vertebrafe study cases/adjacent-risk.toml -o out/risk     parameter study on all local cores
  vertebrafe study cases/adjacent-risk.toml -o out/risk --scheduler tcp://host:8786   on a Dask cluster
  vertebrafe converge cases/vp-bipedicular-fill15.toml -o out/conv --sizes 4,3   metrics at two element sizes
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
    from .fem import solvers
    cholesky = ("PARDISO (pypardiso, MKL)" if solvers.pardiso_available() else
                "CHOLMOD (scikit-sparse)" if solvers.cholmod_available() else
                f"none: SuperLU up to {solvers.SUPERLU_MAX_DOFS} unknowns, AMG-CG above")
    print(f"{'direct':<10} {cholesky}")
    return 0


# ------------------------------------------------------------------------------------------------
# run, mesh, study, report


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bars or stage messages; results, summary tables, warnings and errors "
                            "are still printed")
    group.add_argument("-v", "--verbose", action="store_true", help="print every stage and case")


def _add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="run a model whose estimated memory exceeds the available memory")


def _add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", "-j", type=int, default=None, metavar="N",
                        help="local worker processes, one thread each (default: number of CPUs)")


def _check_workers(args: argparse.Namespace) -> None:
    from .errors import InputError

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers = {args.workers}; allowed: an integer >= 1")


def _raise_failures(args: argparse.Namespace, run, study) -> None:
    """A study run's failed cases as one error (the finished ones are kept; a rerun retries the rest)."""
    if run.failed:
        raise VertebrafeError(f"{len(run.failed)} of {len(study.cases)} cases failed (first: "
                              f"{next(iter(run.failed.values()))}); errors in {args.output}/failures.csv; "
                              "rerun the same command to retry them")


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
    from .report import key_metrics

    for label, value, unit in key_metrics(result):
        print(f"  {label:<56} {value:10.4g} {unit}")
    from .outputs import read_marker
    _echo(args, f"wrote {args.output}/ ({', '.join(sorted(read_marker(out)['files']))})")
    return 0


def _configure_mesh(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", metavar="CASE.toml", help="case file (docs/cases.md); [load] is validated "
                        "but not used")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.vtu",
                        help="mesh file (.vtu, or any extension meshio writes) with region/level tags, "
                             "node and face sets, cement and damage fields")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists and vertebrafe wrote it "
                        "(a .vtu it wrote; other formats are never replaced)")
    _add_force(parser)
    _add_set(parser)
    _add_verbosity(parser)


def _run_mesh(args: argparse.Namespace) -> int:
    import os

    from .case import build_segment, load_case
    from .errors import InputError
    from .io.provenance import check_replaceable

    if not args.output.strip() or os.path.isdir(args.output):
        raise InputError(f"-o/--output = {args.output!r}; allowed: the path of a mesh file")
    check_replaceable(args.output, args.overwrite, "-o/--output")
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


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", metavar="CASE.toml", help="case file (docs/cases.md): segment, fracture, "
                        "treatment and load are built as `vertebrafe run` builds them")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL.inp",
                        help="input file for another solver: .inp (CalculiX/Abaqus) or .feb (FEBio 4.0); "
                             "see docs/interop.md")
    parser.add_argument("--formulation", default="bbar", choices=["bbar", "full", "incompatible"],
                        help="hex8 formulation (default bbar, as `vertebrafe run`; bbar has no exact CalculiX or "
                             "FEBio counterpart: use full (or incompatible for CalculiX) to compare results)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file that vertebrafe "
                        "wrote")
    _add_set(parser)
    _add_verbosity(parser)


def _run_export(args: argparse.Namespace) -> int:
    import os
    import warnings

    from .case import build_segment, load_case
    from .io.export import ExportWarning
    from .simulate import prestressed_model

    _check_case_file(args.case)
    case = load_case(args.case, _parse_overrides(args.overrides))
    seg = build_segment(case)
    model, _, rest = prestressed_model(seg, case.load.to_load(name=case.load.preset or "", segment=seg),
                                       args.formulation)
    if rest is not None:
        stress = ", ".join(f"{d} {s:.4g}" for d, s in rest.info["swelling_stress"].items())
        _echo(args, f"rest state of the nucleus pre-pressure {seg.nucleus_prepressure:g} MPa: swelling stresses "
                    f"(MPa) {stress}, written as the nucleus cells' initial stress")
    parent = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(parent, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExportWarning)
        model.export(args.output, overwrite=args.overwrite)
    for w in caught:
        print(f"vertebrafe: warning: {w.message}", file=sys.stderr)
    _echo(args, f"wrote {args.output}: {seg.mesh.n_cells} cells, {seg.mesh.n_points} nodes, "
                f"{len(model.plates)} rigid plate(s), formulation {args.formulation}")
    return 0


def _configure_study(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="STUDY.toml", help="study file: base case and sweep (docs/cases.md)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="study directory: summary.csv, plots/, cases/<id>/; rerun to resume")
    _add_workers(parser)
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--dry-run", action="store_true", help="list the cases (id, variant, parameters) and exit")
    parser.add_argument("--no-retry-failed", dest="retry_failed", action="store_false",
                        help="keep the errors of cases that failed in an earlier run instead of rerunning them")
    _add_force(parser)
    _add_set(parser)
    _add_verbosity(parser)


def _run_study(args: argparse.Namespace) -> int:
    from .study import case_status, load_study, run_study

    _check_workers(args)
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
    for note in run.summary.get("notes", []):
        _echo(args, f"note:    {note}")
    from .report import print_tables

    print_tables(run.summary.get("tables", {}))
    _raise_failures(args, run, study)
    return 0


def _configure_converge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="case or study file (docs/cases.md); every case runs at each "
                        "element size")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="study directory: convergence.csv, convergence.md, summary.csv, cases/<id>/; rerun to "
                             "resume or to add sizes")
    parser.add_argument("--sizes", required=True, metavar="H1,H2,...",
                        help="segment.element_size values in mm, coarse to fine, at least two, e.g. 3,2,1.5")
    parser.add_argument("--tolerance", default="5", metavar="PERCENT",
                        help="largest change (%%) from the second-finest to the finest size of a converged row "
                             "(default 5)")
    _add_workers(parser)
    _add_force(parser)
    _add_set(parser)
    _add_verbosity(parser)


def _run_converge(args: argparse.Namespace) -> int:
    from .study.converge import check_tolerance, convergence_study, parse_sizes, run_convergence

    _check_workers(args)
    sizes = parse_sizes(args.sizes)
    tolerance = check_tolerance(args.tolerance)
    study = convergence_study(args.file, sizes, _parse_overrides(args.overrides))
    _echo(args, f"converge {study.name}: {len(study.cases)} cases at {', '.join(f'{h:g}' for h in sizes)} mm "
                f"-> {args.output}")
    log = (lambda m: print(m, file=sys.stderr)) if args.verbose else None
    run, written = run_convergence(study, args.output, sizes, tolerance, workers=args.workers,
                                   progress=not args.quiet, log=log, force=args.force)
    _echo(args, run.describe())
    for line in written["lines"]:
        print(line)
    misses = written["misses"]
    if len(misses):
        import pandas as pd

        print(f"rows that miss, worst first ({min(10, len(misses))} of {len(misses)}):")
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(misses.head(10).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    _echo(args, f"wrote {written['csv']}, {written['md']}")
    _raise_failures(args, run, study)
    return 0


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="output of 'vertebrafe study' or 'vertebrafe run'")
    parser.add_argument("--no-figures", dest="figures", action="store_false",
                        help="skip the rendered figures (DIR/figures/*.png; they need off-screen rendering)")
    _add_verbosity(parser)


def _report_study(args: argparse.Namespace, d: str) -> int:
    """``vertebrafe report`` of a study directory (its lock held)."""
    from .report import print_tables, summarize, write_report_md

    paths = summarize(d)
    fails = paths["failed"]
    lines = []
    if paths.get("summary"):
        lines.append(f"{paths['finished']} finished cases, {paths['rows']} rows in summary.csv")
        _echo(args, f"{d}: {paths['finished']} finished cases, {paths['rows']} rows -> {paths['summary']}")
    if fails:
        lines.append(f"{len(fails)} cases not finished or failed (failures.csv)")
        _echo(args, f"{len(fails)} cases not finished or failed (see {paths['failures']}):")
        for row in fails[:10]:
            _echo(args, f"  {row['id']} {row['name']}: {row['status']} {row['error'] or ''}")
    for png in paths.get("plots", []):
        _echo(args, f"plot: {png}")
    for note in paths.get("notes", []):
        lines.append(note)
        _echo(args, f"note: {note}")
    tables = {k: v for k, v in paths.get("tables", {}).items() if v is not None}
    print_tables(tables)
    figures = _report_figures(args, d)
    md = write_report_md(d, lines, {name: t.round(3) for name, t in tables.items()}, paths.get("plots", []),
                         figures)
    _echo(args, f"report: {md}")
    return 0


def _run_report(args: argparse.Namespace) -> int:
    """Tables and plots (as before), figures of the fields in ``DIR/figures/`` and ``DIR/report.md``."""
    import os

    import pandas as pd

    from .errors import InputError
    from .io.studydir import is_study_dir, lock
    from .report import case_report, write_report_md

    d = args.directory
    if is_study_dir(d):
        with lock(d):
            return _report_study(args, d)
    if os.path.exists(os.path.join(d, "metrics.csv")):
        png, table = case_report(d)
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table.round(4).to_string())
        _echo(args, f"plot: {png}")
        figures = _report_figures(args, d)
        md = write_report_md(d, [], {"per level": table.round(4)}, [png], figures)
        _echo(args, f"report: {md}")
        return 0
    raise InputError(f"{d}: neither a study directory (study.json) nor a case result (metrics.csv)")


def _report_figures(args, d: str) -> list:
    """Render the figures of ``vertebrafe.viz.report_figures`` into ``d/figures/`` and print their paths; when
    they cannot be drawn (no off-screen rendering, no result.vtu, --no-figures) print one line saying why."""
    if not args.figures:
        _echo(args, "figures skipped: --no-figures")
        return []
    from .viz import report_figures

    notes = []
    try:
        figures = [str(p) for p in report_figures(d, notes=notes)]
    except (VertebrafeError, OSError) as exc:
        notes.append(f"figures skipped: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        figures = []
    for note in notes:
        _echo(args, note)
    for png in figures:
        _echo(args, f"figure: {png}")
    return figures


VIEW_HELP = "show a result, segment or mesh file (VTU) with PyVista, or save a screenshot"


def _configure_view(parser: argparse.ArgumentParser) -> None:
    from .viz.command import configure_view

    configure_view(parser)


def _run_view(args: argparse.Namespace) -> int:
    from .viz.command import run_view

    return run_view(args)


def _configure_warmup(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("The kernels are cached by numba (in __pycache__ beside the sources, or in "
                     "$NUMBA_CACHE_DIR); with a warm cache this takes about a second.")


def _run_warmup(args: argparse.Namespace) -> int:
    from .fem.warmup import warm_up
    elapsed = warm_up(say=print, threads=1)      # the serial builds of study workers
    elapsed += warm_up(say=print)                # the parallel builds of single runs
    print(f"numba kernels ready ({elapsed:.1f} s)")
    return 0


#: name -> (one-line help, configure(parser), run(args) -> exit status). A plain registry: other modules
#: add their commands by inserting an entry (``vertebrafe.viz`` provides ``view``).
SUBCOMMANDS: Dict[str, Tuple[str, ConfigureFn, RunFn]] = {
    "run": ("run one case file and write its results", _configure_run, _run_run),
    "study": ("run a parameter study (process pool or Dask cluster), resumable", _configure_study, _run_study),
    "converge": ("run a case or study at several element sizes and tabulate how much each metric changes "
                 "(mesh convergence), resumable", _configure_converge, _run_converge),
    "mesh": ("mesh a case (segment, fracture, treatment) and write the mesh", _configure_mesh, _run_mesh),
    "export": ("write a case's complete model (mesh, materials, constraints, loads) for CalculiX/Abaqus or FEBio",
               _configure_export, _run_export),
    "report": ("summary tables, plots and field figures (figures/, report.md) of a finished run or study",
               _configure_report, _run_report),
    "view": (VIEW_HELP, _configure_view, _run_view),
    "warmup": ("compile the numba kernels now (once per install; studies otherwise do it before their "
               "first case)", _configure_warmup, _run_warmup),
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


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Plausibility and resolution warnings as one line ``vertebrafe: warning: ...`` on stderr (others as Python
    prints them)."""
    if issubclass(category, RESULT_WARNINGS):
        print(f"vertebrafe: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


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
        with warnings.catch_warnings():
            for category in RESULT_WARNINGS:
                warnings.simplefilter("always", category)
            warnings.showwarning = _show_warning
            return int(run(args) or 0)
    except KeyboardInterrupt:
        print("vertebrafe: interrupted", file=sys.stderr)
        if getattr(args, "study", None) and getattr(args, "output", None):
            print(f"vertebrafe: the finished cases are kept in {args.output}/; resume with the same command: "
                  f"vertebrafe study {shlex.quote(args.study)} -o {shlex.quote(args.output)}", file=sys.stderr)
        elif args.command == "converge":
            print(f"vertebrafe: the finished cases are kept in {args.output}/; resume with the same command",
                  file=sys.stderr)
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
