"""Mesh files through meshio, with vertebrafe errors instead of meshio's.

meshio reads and writes many formats; some need optional Python packages (``.med``, ``.xdmf``, ``.h5m``
need h5py; ``.exo`` needs netCDF4), and some readers fail with bare exceptions (an ``AssertionError``
from the Nastran reader on cells it does not know). :func:`read` and :func:`write` turn every such
failure into a :class:`~vertebrafe.errors.MeshError` that names the file, the format and, for a
missing package, the ``pip install`` that adds it (the ``io`` extra: ``pip install "vertebrafe[io]"``).
"""
from __future__ import annotations

import os

from ..errors import MeshError
from .atomic import atomic_path

__all__ = ["read", "write", "format_of", "OPTIONAL_PACKAGES"]

#: Python module -> how to install it, for formats whose meshio reader or writer needs it.
OPTIONAL_PACKAGES = {"h5py": 'pip install "vertebrafe[io]" (or pip install h5py)',
                     "netCDF4": "pip install netCDF4"}


def format_of(path, file_format=None):
    """The meshio format name of ``path`` (``file_format`` if given, else from the extension)."""
    if file_format:
        return file_format
    from meshio._helpers import _filetypes_from_path
    from pathlib import Path

    try:
        types = _filetypes_from_path(Path(path))
    except Exception:  # noqa: BLE001 - an unknown extension is reported by the caller
        return None
    return "gmsh" if "gmsh" in types else types[0]          # .msh: gmsh before ansys (meshio lists ansys first)


def _known_formats():
    from meshio._helpers import reader_map

    return sorted(reader_map)


def _fail(action, path, fmt, exc):
    """MeshError for a meshio failure; ``action`` is ``"read"`` or ``"write"``."""
    name = getattr(exc, "name", None)
    if isinstance(exc, ModuleNotFoundError) and name:
        how = OPTIONAL_PACKAGES.get(name.split(".")[0], f"pip install {name.split('.')[0]}")
        return MeshError(f"{'Reading' if action == 'read' else 'Writing'} {path!r} as {fmt} needs the Python package "
                         f"{name!r}, which is not installed: {how}")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "(no message)"
    return MeshError(f"meshio could not {action} {path!r} as {fmt}: {type(exc).__name__}: {detail}")


def read(path, file_format=None):
    """Read ``path`` with meshio; returns a :class:`meshio.Mesh`. Raises MeshError naming file and format."""
    import meshio

    path = os.fspath(path)
    fmt = format_of(path, file_format)
    if fmt is None:
        raise MeshError(f"cannot tell the mesh format of {path!r} from its extension; pass file_format= one "
                        f"of {', '.join(_known_formats())}")
    if not os.path.isfile(path):
        raise MeshError(f"mesh file {path!r} does not exist")
    # meshio.read with a format prints the reader's error and calls sys.exit(1); call the reader itself
    from meshio._helpers import reader_map

    reader = reader_map.get(fmt, lambda p: meshio.read(p, file_format=fmt))
    try:
        return reader(path)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - every meshio failure becomes a MeshError
        raise _fail("read", path, fmt, exc) from exc


def write(path, mesh, file_format=None, **kwargs):
    """Write the :class:`meshio.Mesh` ``mesh`` to ``path`` with meshio, atomically; MeshError names file and
    format."""
    import meshio

    path = os.fspath(path)
    fmt = format_of(path, file_format)
    if fmt is None:
        raise MeshError(f"cannot tell the mesh format of {path!r} from its extension; pass file_format= one "
                        f"of {', '.join(_known_formats())}")
    try:
        with atomic_path(path) as tmp:                # complete or absent, like every vertebrafe output
            meshio.write(tmp, mesh, file_format=fmt, **kwargs)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - every meshio failure becomes a MeshError
        raise _fail("write", path, fmt, exc) from exc
