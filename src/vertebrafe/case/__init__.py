"""Case files: one simulation described in TOML, validated strictly, run through the pipeline.

A case travels one way through the layers::

    segment (anatomy) -> fracture -> treatment (vertebroplasty / kyphoplasty) -> load -> simulate

This module holds the schema (:data:`SCHEMA`, one :class:`Field` per key, used for validation and for
``docs/cases.md``), the Python objects of a validated case (:class:`Case` and its section dataclasses),
the loaders (:func:`load_case`, :func:`parse_case`) and the pipeline (:func:`build_segment`,
:func:`run_case`). It is the only place where case keys are mapped onto library calls.

Validation happens before any meshing: unknown keys, wrong types, missing fields, values out of range
and inconsistent combinations are rejected with an :class:`~vertebrafe.errors.InputError` whose message
names the file, the key path, the value and what is allowed, e.g.::

    cases/bad.toml: treatment.fill = 1.5 is out of range; allowed (0, 1]

A case file is data only: TOML cannot execute code, and no value is evaluated.

>>> import vertebrafe as vf
>>> case = vf.case.parse_case({"segment": {"levels": "T12-L2"}, "bone": {"bmd": 80.0},
...                            "load": {"preset": "relaxed_standing"}})
>>> case.segment.element_size
2.0
"""
from __future__ import annotations

import sys

from .parse import (apply_overrides, deep_merge, fmt_value, load_case, load_toml, parse_case,
                    type_name)
from .run import ModelCache, build_segment, model_key, run_case, save_result
from .schema import REQUIRED, SCHEMA, SECTIONS, CaseError, Field
from .specs import (BoneSpec, Case, CaseMeta, FractureSpec, LoadSpec, OutputSpec, SegmentSpec, SolverSpec,
                    TreatmentSpec, case_id)
from ..io.toml import to_toml

if sys.version_info >= (3, 11):  # pragma: no cover - version dependent
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Field", "SCHEMA", "SECTIONS", "Case", "SegmentSpec", "BoneSpec", "FractureSpec", "TreatmentSpec",
           "LoadSpec", "SolverSpec", "OutputSpec", "CaseMeta", "load_toml", "load_case", "parse_case",
           "build_segment", "run_case", "case_id", "CaseError", "model_key", "ModelCache"]
