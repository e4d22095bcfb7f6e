"""Export of a complete :class:`~vertebrafe.Model` to other solvers: :func:`export` picks the writer from
the file extension (:data:`FORMATS`). The description the writers share is
:mod:`vertebrafe.io.model_data`."""
from __future__ import annotations

import os

from ..errors import InputError
from .model_data import ExportWarning, ModelData, PlateData, describe, isotropic_constants  # noqa: F401

__all__ = ["ExportWarning", "ModelData", "PlateData", "describe", "export", "isotropic_constants",
           "FORMATS"]


def _writers():
    from . import abaqus, febio

    return {".inp": abaqus.write_inp, ".feb": febio.write_feb}


#: File extensions :func:`export` writes and the solver each is for.
FORMATS = {".inp": "CalculiX / Abaqus input deck", ".feb": "FEBio input file (format 4.0)"}


def export(model, path, **options):
    """Write ``model`` to ``path`` in the format of its extension (:data:`FORMATS`).

    ``options`` go to the writer (:func:`vertebrafe.io.abaqus.write_inp`,
    :func:`vertebrafe.io.febio.write_feb`). Returns the path written.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    writers = _writers()
    if ext not in writers:
        raise InputError(f"export path {os.fspath(path)!r} has extension {ext!r}; allowed: "
                         + ", ".join(f"{e} ({d})" for e, d in FORMATS.items()))
    return writers[ext](model, path, **options)
