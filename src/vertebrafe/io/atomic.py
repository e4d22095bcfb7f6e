"""Atomic file output: a file or folder is either complete or absent, never half written.

Every file vertebrafe writes goes through :func:`atomic_path` (or its shorthands :func:`write_text` and
:func:`write_bytes`): the content is written to a temporary name in the same folder and renamed over the
target (``os.replace``, atomic on POSIX), so a reader, a killed run or a full disk never leaves a
truncated file. The temporary file is created like any other (the umask applies). Folders are
replaced with :func:`replace_dir`.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import time

__all__ = ["atomic_path", "write_text", "write_bytes", "atomic_dir", "replace_dir", "is_temporary", "temp_dir",
           "umask"]

_COUNTER = itertools.count()
_TMP = ".tmp-"


def umask():
    """The process umask (read from ``/proc/self/status`` where it is, else set and restored at once)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def temp_dir(directory, prefix=_TMP):
    """A new temporary folder in ``directory`` whose mode follows the umask (``0777 & ~umask``, not the
    0700 of ``tempfile.mkdtemp``)."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix=prefix, dir=directory)
    os.chmod(tmp, 0o777 & ~umask())
    return tmp


def is_temporary(name):
    """Whether file or folder ``name`` is a leftover temporary of this module (or of :func:`replace_dir`)."""
    return name.startswith(_TMP) or ".old-" in name


@contextlib.contextmanager
def atomic_path(path, sync=False):
    """Context manager giving a temporary path beside ``path`` to write to; when the block ends without an
    error the temporary replaces ``path``, otherwise it is removed. The temporary ends with the name of
    ``path``, so it keeps every extension (writers such as meshio, matplotlib and nibabel choose the
    format from it). ``sync`` flushes the file
    to disk before the rename."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f"{_TMP}{os.getpid()}-{next(_COUNTER)}-{name}")
    try:
        yield tmp
        if sync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def write_text(path, text, sync=False):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path, sync=sync) as tmp:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)


def write_bytes(path, data, sync=False):
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, sync=sync) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)


@contextlib.contextmanager
def atomic_dir(final, label=""):
    """Context manager giving a new temporary folder beside ``final`` to fill; when the block ends without
    an error it replaces ``final`` (:func:`replace_dir`), otherwise it is deleted."""
    import shutil

    parent = os.path.dirname(os.path.abspath(final))
    tmp = temp_dir(parent, prefix=f"{_TMP}{label}-" if label else _TMP)
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp, final):
    """Move directory ``tmp`` to ``final``, replacing an existing ``final`` (POSIX rename is atomic; an old
    directory is first renamed aside, then deleted). Only for folders vertebrafe itself owns (a study's
    ``cases/<id>``)."""
    import shutil
    if os.path.lexists(final):
        aside = f"{final}.old-{os.getpid()}-{time.monotonic_ns()}"
        os.replace(final, aside)
        os.replace(tmp, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, final)
