"""Atomic file output: a file or directory is either complete or absent, never half written."""
from __future__ import annotations

import os
import time

__all__ = ["replace_dir", "temp_file", "temp_dir", "umask"]


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


def temp_file(directory, prefix=".tmp-", suffix=""):
    """A new empty temporary file in ``directory`` (path), made for a later ``os.replace``: unlike
    ``tempfile.mkstemp`` (always 0600) its mode follows the umask (``0666 & ~umask``), as a plain ``open``
    would, so group members can read the published file."""
    import tempfile
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~umask())
    finally:
        os.close(fd)
    return tmp


def temp_dir(directory, prefix=".tmp-"):
    """A new temporary folder in ``directory`` whose mode follows the umask (``0777 & ~umask``, not the
    0700 of ``tempfile.mkdtemp``)."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix=prefix, dir=directory)
    os.chmod(tmp, 0o777 & ~umask())
    return tmp

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

