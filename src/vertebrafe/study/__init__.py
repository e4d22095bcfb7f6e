"""Parameter studies: many cases from one study file, run on a process pool or a Dask cluster.

A study file names a base case and a sweep (docs/cases.md)::

    [study]
    name = "adjacent-risk"
    base = "osteoporotic-wedge-nsm.toml"     # a case file, relative to the study file (optional)

    [base]                                   # changes to (or all of) the base case
    segment.element_size = 4.0

    [grid]                                   # full grid, applied to every variant
    "bone.bmd" = [60.0, 100.0]

    [[variants]]                             # explicit variants, each with its own settings and grid
    name = "VP"
    set = {"treatment.kind" = "vertebroplasty"}
    grid = {"treatment.volume" = [2.0, 4.0, 6.0]}

    [summary]
    reference = "NSM"                        # ratios against the NSM case with the same grid values
    [[summary.plots]]
    metric = "von_mises_p95"
    x = "treatment.volume"
    facet = "bone.bmd"

Every case of the sweep is validated before anything runs and gets a stable id, the hash of its
resolved content (:func:`vertebrafe.case.case_id`). Outputs go to ``DIR/cases/<id>/`` (``result.vtu``,
``metrics.csv``, ``case.toml``, ``status.json``), each written into a temporary directory and renamed
into place, so a case directory is complete or absent. Rerunning a study skips the cases whose
``status.json`` says ``ok`` and redoes the others; a failing case records its error (``status.json``,
``failures.csv``) and the study goes on; killing the study loses only the cases in flight. Cases that
differ only in their load form one task that builds their model and solver set-up once
(:func:`vertebrafe.case.model_key`); its cases are recorded one by one, in a worker pool when the task ends.

Execution: ``workers=1`` runs in this process; ``workers=N`` a pool of N spawned processes, each with
numba and BLAS limited to one thread (so that N cases use N cores); ``scheduler="tcp://host:8786"``
sends the cases to a running Dask distributed cluster (``pip install "dask[distributed]"``). Workers
return the files of a case to this process, which writes them, so the cluster needs no shared file
system.

The summary (:func:`summarize`) is ``DIR/summary.csv``, one row per case and metric with the swept
parameters as columns (and, with a reference variant, the reference value and the ratio), plus one PNG
(and a pivot CSV) per ``[[summary.plots]]`` entry under ``DIR/plots/``.
"""
from __future__ import annotations

from ..io.studydir import STATUS_FILE, case_status
from ..report import PlotSpec, summarize
from .backends import THREAD_ENV, pipeline_runner
from .plan import Study, StudyCase, SummarySpec, Variant, load_study, parse_study
from .run import StudyRun, run_study

__all__ = ["Study", "StudyCase", "Variant", "PlotSpec", "SummarySpec", "StudyRun", "load_study", "parse_study",
           "run_study", "summarize", "case_status", "pipeline_runner"]
