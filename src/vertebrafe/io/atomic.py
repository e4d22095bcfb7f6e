"""Atomic file output: a file or directory is either complete or absent, never half written."""
from __future__ import annotations

import os
import time

__all__ = ["replace_dir"]

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

