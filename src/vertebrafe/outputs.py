"""Output folders that never destroy what vertebrafe did not write.

A folder written by ``vertebrafe run`` holds a marker file, :data:`MARKER` (JSON: the vertebrafe version,
the kind of output and the SHA-256 of every file it wrote). A non-empty output path is refused unless
``overwrite`` is given, and even then only the files named in an earlier marker are replaced or removed;
anything else in the folder is left alone. File names derived from input (plot names, case ids) are
checked with :func:`check_name` so that they stay inside the output folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil

from .errors import InputError, OutputError
from .io.atomic import temp_dir, write_text

MARKER = ".vertebrafe.json"
_TMP = ".vertebrafe-tmp-"           # prefix of the temporary folder of a write in progress
#: A file name made of letters, digits, ``.``, ``-`` and ``_``, not starting with ``.``, at most 128 characters.
NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_NAME_RULE = "1-128 characters from A-Z a-z 0-9 . _ -, not starting with '.'"


def check_name(name, field):
    """``name`` if it is a safe file name (:data:`NAME_RE`), else an :class:`InputError` naming ``field``."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise InputError(f"{field} = {shown} is not a safe file name; allowed: {_NAME_RULE}")
    return name


def safe_name(text):
    """``text`` made into a safe file name: other characters become ``_``, cut to 128 characters."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).lstrip(".")[:128]
    return s or "_"


def read_marker(directory):
    """The marker of ``directory`` as a dict, or None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(directory, MARKER)) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and isinstance(m.get("files"), dict) else None


def folder_path(path, *, option="-o/--output", allowed="a new or empty folder"):
    """``(text, absolute path)`` of the output folder ``path``; InputError if it is empty or an existing
    file (vertebrafe never replaces a file it did not write). ``allowed`` completes the message."""
    text = os.fspath(path) if path is not None else ""
    if not str(text).strip():
        raise InputError(f"{option} = {text!r} is empty; allowed: the path of a new or empty folder")
    out = os.path.abspath(text)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise InputError(f"{option} = {text!r} is an existing file; allowed: {allowed} "
                         "(vertebrafe never replaces a file it did not write)")
    return text, out


def check_output_dir(path, kind, *, overwrite=False, option="-o/--output"):
    """Absolute path of the output folder ``path`` after checking that writing ``kind`` output there
    destroys nothing: it must not exist, be an empty folder, or (with ``overwrite``) hold an earlier
    vertebrafe output of the same kind. Raises :class:`InputError` otherwise."""
    text, out = folder_path(path, option=option)
    if os.path.isdir(out):
        entries = [n for n in os.listdir(out) if not n.startswith(_TMP)]
        if entries:
            marker = read_marker(out)
            if marker is None or marker.get("kind") != kind:
                raise InputError(f"{option} = {text!r} is a folder with {len(entries)} entries that is not an "
                                 f"earlier vertebrafe {kind} output (no {MARKER}); allowed: a new or empty "
                                 "folder (vertebrafe never deletes files it did not write)")
            if not overwrite:
                raise InputError(f"{option} = {text!r} holds an earlier vertebrafe {kind} output; allowed: a "
                                 "new or empty folder, or --overwrite (overwrite=True) to replace the files it "
                                 "wrote (other files are kept)")
    return out


def sha256(path):
    """Hex SHA-256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_marker(out, marker):
    write_text(os.path.join(out, MARKER), json.dumps(marker, indent=1), sync=True)


def publish(write, out, kind, *, overwrite=False):
    """Write an output of ``kind`` into folder ``out`` without destroying anything vertebrafe did not write.

    ``write(tmp)`` writes plain files into a temporary folder inside ``out``; they are then moved into
    ``out`` one by one (each move atomic), files of the earlier marker that were not rewritten are removed,
    and the marker with the new checksums is written last. While files move, the marker lists the old and
    new names with ``complete = false``, so an interrupted write can still be replaced with ``overwrite``.
    Returns the absolute path of ``out``."""
    from ._version import __version__

    out = check_output_dir(out, kind, overwrite=overwrite)
    try:
        _publish(write, out, kind, __version__)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {exc.filename or out}: {exc.strerror or exc} (errno {exc.errno}); "
                          f"earlier files in {out} are kept and this output is not marked complete") from exc
    return out


def _publish(write, out, kind, version):
    os.makedirs(out, exist_ok=True)
    for n in os.listdir(out):                 # temporary folders of an earlier, interrupted write
        if n.startswith(_TMP) and os.path.isdir(os.path.join(out, n)) and not os.path.islink(os.path.join(out, n)):
            shutil.rmtree(os.path.join(out, n), ignore_errors=True)
    old = (read_marker(out) or {}).get("files", {})
    tmp = temp_dir(out, prefix=_TMP)
    try:
        write(tmp)
        names = sorted(os.listdir(tmp))
        for n in names:
            check_name(n, "output file")
            if not os.path.isfile(os.path.join(tmp, n)):
                raise InputError(f"output file {n!r} is not a plain file")
        taken = [n for n in names if os.path.lexists(os.path.join(out, n)) and n not in old]
        if taken:
            raise InputError(f"{out}: {', '.join(taken)} exist and were not written by vertebrafe; not replaced")
        files = {n: sha256(os.path.join(tmp, n)) for n in names}
        _write_marker(out, {"vertebrafe": version, "kind": kind, "complete": False, "files": {**old, **files}})
        for n in names:
            os.replace(os.path.join(tmp, n), os.path.join(out, n))
        for n in set(old) - set(files):
            p = os.path.join(out, n)
            if NAME_RE.fullmatch(n) and n != MARKER and os.path.isfile(p) and not os.path.islink(p):
                os.remove(p)
        _write_marker(out, {"vertebrafe": version, "kind": kind, "complete": True, "files": files})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verify(directory):
    """Names of the files of the marker of ``directory`` that are missing or whose checksum differs;
    None when there is no marker. An incomplete write lists the marker itself."""
    m = read_marker(directory)
    if m is None:
        return None
    bad = [] if m.get("complete") else [MARKER]
    for n, digest in m["files"].items():
        p = os.path.join(directory, n)
        if not os.path.isfile(p) or sha256(p) != digest:
            bad.append(n)
    return bad
