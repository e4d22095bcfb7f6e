"""The study directory: ``study.json``, ``cases/<id>/`` (each with ``status.json``), ``strengths/`` (the
plate strengths its cases share, :class:`StrengthFiles`), ``summary.csv``, ``failures.csv``, ``plots/``. Every
reader and writer of that layout is here."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time

import numpy as np

from .._version import __version__, source_digest
from ..errors import InputError, OutputError
from .atomic import atomic_dir, atomic_path, is_temporary, write_text

__all__ = ["STATUS_FILE", "STUDY_FILE", "LOCK_FILE", "is_study_dir", "read_study", "write_study", "case_dir",
           "case_status", "write_case", "damage", "lock", "clean_temporaries", "STRENGTHS_DIR", "StrengthFiles"]

STATUS_FILE = "status.json"
STUDY_FILE = "study.json"
LOCK_FILE = ".lock"
STRENGTHS_DIR = "strengths"




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
    ``case.toml`` (text ``case_toml``) and ``status.json`` (dict ``status`` with the SHA-256 of every file
    added as ``checksums`` and the vertebrafe version as ``vertebrafe``, written last and synced). A write
    that fails (full disk, read-only folder) raises :class:`OutputError` and leaves the earlier files."""
    files = {**files, "case.toml": case_toml.encode("utf-8")}
    status = dict(status, vertebrafe=__version__,
                  checksums={n: hashlib.sha256(data).hexdigest() for n, data in files.items()})
    try:
        os.makedirs(os.path.join(out, "cases"), exist_ok=True)
        with atomic_dir(case_dir(out, cid), label=cid) as tmp:
            for name, data in files.items():
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(data)
            with open(os.path.join(tmp, STATUS_FILE), "w") as f:
                json.dump(status, f, indent=1, default=str)
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:
        raise OutputError(f"cannot write case {cid} into {out}: {exc.strerror or exc} (errno {exc.errno}); its "
                          "earlier files are kept and it is not marked finished") from exc


def damage(out, cid, status):
    """What is wrong with the files of finished case ``cid`` (``status`` its status.json): a list of
    ``"name: missing"`` / ``"name: changed or truncated"`` / ``"no checksums"``; empty when all verify."""
    sums = status.get("checksums")
    if not isinstance(sums, dict) or not sums:
        return ["no checksums (written by an older vertebrafe)"]
    problems = []
    for name, digest in sums.items():
        h = hashlib.sha256()
        try:
            with open(os.path.join(case_dir(out, cid), name), "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            problems.append(f"{name}: missing")
            continue
        if h.hexdigest() != digest:
            problems.append(f"{name}: changed or truncated (checksum differs)")
    return problems


@contextlib.contextmanager
def lock(out):
    """Hold the lock of study directory ``out`` (``out/.lock``, an advisory ``flock`` that the system
    releases when the process ends, even by SIGKILL). A second process gets an :class:`InputError` naming
    the holder."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): no lock
        yield
        return
    import socket

    fd = os.open(os.path.join(out, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 500, 0).decode(errors="replace").strip() or "another process"
            raise InputError(f"-o/--output = {out!r} is in use by another vertebrafe study ({holder}); wait for it "
                             "to finish or use another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                  .encode(), 0)
        yield
    finally:
        os.close(fd)          # releases the lock


def clean_temporaries(out):
    """Delete the temporaries a killed run left in ``out/cases`` and ``out/strengths``."""
    for folder in (os.path.join(out, "cases"), os.path.join(out, STRENGTHS_DIR)):
        if os.path.isdir(folder):
            for n in os.listdir(folder):
                if is_temporary(n):
                    path = os.path.join(folder, n)
                    if os.path.isdir(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.remove(path)


class StrengthFiles(dict):
    """The plate strengths of a study (``cache`` of :func:`vertebrafe.post.strength.plate_rows`): a dict of
    this process's entries that also keeps each one in ``out/strengths/<digest>.npz`` (written atomically,
    with its key, the vertebrafe version and the digest of its source code, :func:`~vertebrafe._version.source_digest`),
    so that the worker processes of a study, and a later run that resumes or extends it, solve each distinct
    vertebra once. ``get`` reads a file this process lacks; a file of another key (a digest collision), version
    or source code, or an unreadable one, is a miss. Values are dicts of
    numbers, strings and numeric arrays (others stay in this process only, as do values that cannot be written);
    read back they are equal bit for bit. Nothing is written outside ``out/strengths``."""

    def __init__(self, out):
        super().__init__()
        self.folder = os.path.join(os.fspath(out), STRENGTHS_DIR)

    def _path(self, key):
        return os.path.join(self.folder, hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest() + ".npz")

    def get(self, key, default=None):
        if key in self:
            return self[key]
        try:
            with np.load(self._path(key), allow_pickle=False) as z:
                if (str(z["__key__"]) != repr(key) or str(z["__vertebrafe__"]) != __version__
                        or str(z["__source__"]) != source_digest()):
                    return default
                value = {k: z[k].item() if z[k].ndim == 0 else z[k] for k in z.files if not k.startswith("__")}
        except (OSError, ValueError, KeyError, EOFError):
            return default
        super().__setitem__(key, value)
        return value

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        arrays = {k: np.asarray(v) for k, v in value.items()}
        if any(a.dtype == object for a in arrays.values()):
            return
        try:
            os.makedirs(self.folder, exist_ok=True)
            with atomic_path(self._path(key)) as tmp, open(tmp, "xb") as f:
                np.savez(f, __key__=repr(key), __vertebrafe__=__version__, __source__=source_digest(), **arrays)
        except OSError:         # a full disk, a read-only folder: kept here; the case's own write reports it
            pass


