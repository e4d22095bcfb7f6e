"""VTU files with field data: meshio's writer completed with the ``FieldData`` section (name tables, face
sets) that its reader reads back, written atomically."""
from __future__ import annotations

import os
import shutil
import warnings
from xml.sax.saxutils import quoteattr

import numpy as np

from ..errors import MeshError, MeshWarning
from . import meshfile
from .atomic import atomic_path
from .provenance import SIGNATURE

__all__ = ["write", "write_with_field_data"]


def write(path, m, **kwargs):
    """Write the :class:`meshio.Mesh` ``m`` to ``path`` keeping its field data in ``.vtu`` files.

    Every format is written to a temporary name beside ``path`` that then replaces it
    (:func:`vertebrafe.io.atomic.atomic_path`), so a reader never sees a half-written file; ``.vtu``
    files are completed with a ``FieldData`` section (name tables, face sets) first. Other formats keep what their meshio writer keeps; a :class:`MeshWarning` says
    when name tables and face sets are lost. ``kwargs`` go to ``meshio.write``.
    """
    import meshio

    path = os.fspath(path)
    if path.lower().endswith(".vtu"):
        with atomic_path(path) as tmp:
            plain = tmp + ".plain.vtu"                # meshio's file, before the FieldData section
            try:
                meshio.write(plain, m, file_format="vtu", **kwargs)
                write_with_field_data(plain, tmp, m.field_data)
            finally:
                if os.path.exists(plain):
                    os.remove(plain)
        return
    if m.field_data:
        warnings.warn(f"save({os.path.basename(path)!r}): this format does not keep name tables and "
                      f"face sets; use .vtu to keep everything", MeshWarning, stacklevel=3)
    meshfile.write(path, m, **kwargs)


def write_with_field_data(src, dst, field_data):
    """Copy the VTU file ``src`` to ``dst`` adding a ``<FieldData>`` section (ASCII arrays) and vertebrafe's
    signature (:mod:`vertebrafe.io.provenance`).

    meshio 5.3's VTU writer ignores ``field_data`` while its reader reads a ``FieldData`` element
    under ``UnstructuredGrid``; this adds that element, streaming the rest of the file.
    """
    marker = b"<UnstructuredGrid>"
    with open(src, "rb") as fin:
        head = fin.read(1 << 16)
        pos = head.find(marker)
        if pos < 0:
            raise MeshError(f"cannot add field data to {src!r}: no {marker.decode()} tag near the "
                            f"start of the file (unexpected meshio VTU layout)")
        pos += len(marker)
        from .._version import __version__

        lines = [f"\n<!-- {SIGNATURE} {__version__} -->", "<FieldData>"]
        for name, value in field_data.items():
            value = np.asarray(value, dtype=np.int64)
            ntup = value.shape[0] if value.ndim == 2 else value.size
            comps = f'NumberOfComponents="{value.shape[1]}" ' if value.ndim == 2 else ""
            text = " ".join(map(str, value.ravel().tolist())) or " "
            lines.append(f'<DataArray type="Int64" Name={quoteattr(name)} {comps}'
                         f'NumberOfTuples="{ntup}" format="ascii">{text}</DataArray>')
        lines.append("</FieldData>")
        with open(dst, "wb") as fout:
            fout.write(head[:pos])
            fout.write("\n".join(lines).encode("utf-8"))
            fout.write(head[pos:])
            shutil.copyfileobj(fin, fout, 1 << 20)
