"""The ``vertebrafe view`` command (registered in :data:`vertebrafe.cli.SUBCOMMANDS`)."""
from __future__ import annotations

import pathlib

import numpy as np

from ..errors import InputError
from .convert import CLIP_PLANES, FIELDS, case_label, result_path
from .share import export_html
from .views import VIEWS, show_comparison, show_difference, show_field, show_segment

__all__ = ["VIEW_HELP", "configure_view", "run_view"]

VIEW_HELP = "show a result, segment or mesh file (VTU) with PyVista, or save a screenshot"


def configure_view(parser):
    """Arguments of ``vertebrafe view`` (registered in ``vertebrafe.cli.SUBCOMMANDS``)."""
    parser.add_argument("result", metavar="RESULT",
                        help="VTU file written by Result.save / Solution.save / Segment.save / Mesh.save, or a directory written by Result.save (its result.vtu)")
    parser.add_argument("--field", "-f", default=None,
                        help=f"result field to show (default: tags); one of {', '.join(FIELDS)} or an array name")
    parser.add_argument("--color-by", default="region", help="cell tag used without --field (region, level)")
    parser.add_argument("--clip", choices=sorted(CLIP_PLANES), default=None, help="cut on the mid-plane")
    parser.add_argument("--through", default=None, metavar="NAME",
                        help="with --clip: the plane passes through 'cement' (a sagittal cut then goes through the "
                             "larger bolus), 'cement:left', 'cement:right' or a level such as L1")
    parser.add_argument("--view", default="oblique", choices=sorted(VIEWS),
                        help="camera without --clip: anterior, posterior, lateral (= right), left, superior, "
                             "inferior, oblique (default)")
    parser.add_argument("--regions", default=None, metavar="R1,R2",
                        help="with --field: colour only these regions (e.g. cancellous), with their own range; "
                             "R=LO:HI sets a region's own range and scalar bar")
    parser.add_argument("--each-region", action="store_true",
                        help="with --regions: one colour range, colour map and scalar bar per region")
    parser.add_argument("--scale", default="1",
                        help="displacement magnification for --field (number or 'auto'; default 1)")
    parser.add_argument("--shell", choices=("translucent", "hidden", "opaque"), default="translucent",
                        help="cortex/endplate/annulus drawing without --field (default translucent)")
    parser.add_argument("--explode", type=float, default=0.0, metavar="MM",
                        help="distance between levels without --field (mm)")
    parser.add_argument("--compare", metavar="RESULT2", default=None,
                        help="second result: side-by-side view with a shared colour range (needs --field)")
    parser.add_argument("--difference", action="store_true",
                        help="with --compare: show RESULT2 minus RESULT (same mesh topology)")
    parser.add_argument("--with-difference", action="store_true",
                        help="with --compare: side by side plus a third panel with RESULT2 minus RESULT")
    parser.add_argument("--html", metavar="FILE.html", default=None,
                        help="write an interactive view to this self-contained HTML file (opens offline in a "
                             "browser; needs trame-vtk) instead of a window")
    parser.add_argument("--clim", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                        help="colour range of the field (its unit); default: the full range, which a thin stiff "
                             "shell can dominate")
    parser.add_argument("--screenshot", metavar="FILE.png", default=None,
                        help="render off-screen to this PNG instead of opening a window")
    parser.add_argument("--window-size", type=int, nargs=2, default=(1024, 768), metavar=("W", "H"))


def _regions(text, each):
    """``--regions`` as ``show_field(regions=...)``: a list of names (one range), or with ``--each-region``
    or any ``NAME=LO:HI`` item a dict ``{name: (lo, hi) or None}`` (a range and scalar bar per region)."""
    if text is None:
        if each:
            raise InputError("--each-region needs --regions R1,R2")
        return None
    items = [r.strip() for r in text.split(",") if r.strip()]
    if not each and not any("=" in r for r in items):
        return items
    out = {}
    for item in items:
        name, _, lim = item.partition("=")
        try:
            lo, hi = (float(x) for x in lim.split(":")) if lim else (None, None)
        except ValueError:
            lo = hi = float("nan")
        if lim and not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InputError(f"--regions {text!r}: {item!r}; expected NAME or NAME=LO:HI with finite LO < HI "
                             "(the field's unit)")
        out[name.strip()] = (lo, hi) if lim else None
    return out


def run_view(args):
    """Run ``vertebrafe view``; returns the exit status."""
    scale = args.scale
    if scale != "auto":
        try:
            scale = float(scale)
        except ValueError as exc:
            raise InputError(f"--scale {args.scale!r}: expected a number or 'auto'") from exc
    result = result_path(args.result)
    regions = _regions(args.regions, args.each_region)
    if args.html is not None:
        if args.compare is not None:
            raise InputError("--html shows one result; leave out --compare")
        out = export_html(args.result, args.html, field=args.field, scale=scale if args.field else 0.0,
                          clip=args.clip, through=args.through, regions=regions, color_by=args.color_by)
        print(f"wrote {out}")
        return 0
    common = dict(window_size=tuple(args.window_size), screenshot=args.screenshot, clip=args.clip,
                  through=args.through, view=args.view)
    clim = None
    if args.clim is not None:
        lo, hi = args.clim
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InputError(f"--clim {lo:g} {hi:g}: expected two finite numbers LO < HI")
        clim = (lo, hi)
    if args.compare is not None or args.difference:
        if args.compare is None:
            raise InputError("--difference needs --compare RESULT2")
        if args.field is None:
            raise InputError("--compare needs --field (e.g. --field von_mises)")
        labels = (case_label(args.result), case_label(args.compare))
        if labels[0] == labels[1]:
            labels = (str(args.result), str(args.compare))
        other = result_path(args.compare)
        if args.difference:
            out = show_difference(result, other, field=args.field, labels=labels, scale=0.0, clim=clim, **common)
        else:
            out = show_comparison(result, other, field=args.field, labels=labels, scale=scale, clim=clim,
                                  regions=regions, difference=args.with_difference, **common)
    elif args.field is not None:
        out = show_field(result, field=args.field, scale=scale, clim=clim, regions=regions, **common)
    else:
        out = show_segment(result, color_by=args.color_by, shell=args.shell, explode_distance=args.explode,
                           **common)
    if args.screenshot is not None:
        print(f"wrote {out}")
    return 0
