"""The study directory: ``study.json``, ``cases/<id>/`` (each with ``status.json``), ``summary.csv``,
``failures.csv``, ``plots/``. Every reader and writer of that layout is here."""
from __future__ import annotations

import json
import os
import shutil

from .atomic import atomic_dir, is_temporary, write_text

__all__ = ["STATUS_FILE", "STUDY_FILE", "is_study_dir", "read_study", "write_study", "case_dir", "case_status", "write_case", "clean_temporaries"]

STATUS_FILE = "status.json"
STUDY_FILE = "study.json"




def case_dir(out, cid):
    return os.path.join(out, "cases", cid)


def is_study_dir(out):
    """Whether ``out`` holds a study (its ``study.json``)."""
    return os.path.isfile(os.path.join(out, STUDY_FILE))


def read_study(out):
    """The ``study.json`` of study directory ``out`` as a dict (``OSError`` if there is none)."""
    with open(os.path.join(out, STUDY_FILE)) as f:
        return json.load(f)


def write_study(out, meta):
    """Write ``meta`` (the study description, a JSON-ready dict) to ``out/study.json`` atomically."""
    write_text(os.path.join(out, STUDY_FILE), json.dumps(meta, indent=1, default=str))


def case_status(out, cid):
    """The ``status.json`` of case ``cid`` under study directory ``out`` as a dict, or None."""
    p = os.path.join(case_dir(out, cid), STATUS_FILE)
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_case(out, cid, files, case_toml, status):
    """Write the files of case ``cid`` into ``out/cases/<cid>`` atomically: ``files`` (name -> bytes),
    ``case.toml`` (text ``case_toml``) and ``status.json`` (dict ``status``, written last and synced)."""
    os.makedirs(os.path.join(out, "cases"), exist_ok=True)
    with atomic_dir(case_dir(out, cid), label=cid) as tmp:
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        with open(os.path.join(tmp, "case.toml"), "w") as f:
            f.write(case_toml)
        with open(os.path.join(tmp, STATUS_FILE), "w") as f:
            json.dump(status, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())


def clean_temporaries(out):
    """Delete the temporaries a killed run left in ``out/cases``."""
    cases = os.path.join(out, "cases")
    if os.path.isdir(cases):
        for n in os.listdir(cases):
            if is_temporary(n):
                shutil.rmtree(os.path.join(cases, n), ignore_errors=True)


