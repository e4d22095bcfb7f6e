"""The study directory: ``study.json``, ``cases/<id>/`` (each with ``status.json``), ``summary.csv``,
``failures.csv``, ``plots/``. Every reader and writer of that layout is here."""
from __future__ import annotations

import json
import os
import shutil

from .atomic import replace_dir, temp_dir, temp_file

__all__ = ["STATUS_FILE", "STUDY_FILE", "is_study_dir", "read_study", "write_study", "case_dir", "case_status", "write_case", "write_atomic", "clean_temporaries"]

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
    write_atomic(os.path.join(out, STUDY_FILE), json.dumps(meta, indent=1, default=str))


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
    cases = os.path.join(out, "cases")
    os.makedirs(cases, exist_ok=True)
    tmp = temp_dir(cases, prefix=f".tmp-{cid}-")
    try:
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        with open(os.path.join(tmp, "case.toml"), "w") as f:
            f.write(case_toml)
        with open(os.path.join(tmp, STATUS_FILE), "w") as f:
            json.dump(status, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        replace_dir(tmp, case_dir(out, cid))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    tmp = temp_file(d)
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def clean_temporaries(out):
    cases = os.path.join(out, "cases")
    if os.path.isdir(cases):
        for n in os.listdir(cases):
            if n.startswith(".tmp-") or ".old-" in n:
                shutil.rmtree(os.path.join(cases, n), ignore_errors=True)


