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
  vertebrafe --version          print the version and exit
  vertebrafe info               print the versions of vertebrafe and its dependencies
  python -m vertebrafe --help   the same interface without the console script
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


#: name -> (one-line help, configure(parser), run(args) -> exit status)
SUBCOMMANDS: Dict[str, Tuple[str, ConfigureFn, RunFn]] = {
    "info": ("print versions of vertebrafe and its dependencies", _configure_info, _run_info),
    "view": (viz.VIEW_HELP, viz.configure_view, viz.run_view),
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
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
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
