"""Which files vertebrafe wrote: the signature its single-file outputs carry near their start, and the check
that lets ``overwrite`` replace only such files.

``.vtu`` meshes carry an XML comment, ``.inp`` decks a ``**`` comment line and ``.feb`` files an XML comment,
each containing :data:`SIGNATURE`. Formats that cannot carry it (legacy ``.vtk``, ``.msh`` and the other
meshio formats) are never replaced: vertebrafe cannot tell that it wrote them.
"""
from __future__ import annotations

import os

from ..errors import InputError

__all__ = ["SIGNATURE", "written_by_vertebrafe", "check_replaceable"]

#: Text in the first :data:`_HEAD` bytes of every single file vertebrafe writes in a signed format.
SIGNATURE = "written by vertebrafe"
_HEAD = 1 << 16


def written_by_vertebrafe(path) -> bool:
    """Whether the regular file ``path`` carries vertebrafe's :data:`SIGNATURE` in its first 64 KiB."""
    path = os.fspath(path)
    if not os.path.isfile(path) or os.path.islink(path):
        return False
    try:
        with open(path, "rb") as f:
            return SIGNATURE.encode() in f.read(_HEAD)
    except OSError:
        return False


def check_replaceable(path, overwrite, field="path"):
    """Raise :class:`InputError` unless ``path`` may be written: it does not exist, or ``overwrite`` is set and
    the existing file is one vertebrafe wrote (:func:`written_by_vertebrafe`). ``field`` names the argument in
    the message (e.g. ``"-o/--output"``)."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        raise InputError(f"{field} = {path!r} is a folder; allowed: the path of a file")
    if not overwrite:
        raise InputError(f"{field} = {path!r} exists; allowed: a new file, or overwrite "
                         f"(--overwrite) to replace a file vertebrafe wrote")
    if not written_by_vertebrafe(path):
        raise InputError(f"{field} = {path!r} exists and was not written by vertebrafe (no {SIGNATURE!r} near "
                         f"its start; formats other than .vtu, .inp and .feb cannot carry it); vertebrafe "
                         f"replaces only files it wrote: choose a new name or remove the file yourself")
