"""The vertebrafe exception family.

Every error raised on purpose by vertebrafe derives from :class:`VertebrafeError`. Messages name the
field, the offending value, the allowed range and, where it helps, the fix.
"""


class VertebrafeError(Exception):
    """Base class of all vertebrafe errors."""


class InputError(VertebrafeError, ValueError):
    """An argument or a case-file value is malformed or out of range."""


class MeshError(VertebrafeError, ValueError):
    """The mesh is malformed (shapes, index range, duplicate cells, unknown names)."""


class InvertedElementError(MeshError):
    """One or more cells have a non-positive Jacobian determinant; ``cells`` lists them."""

    def __init__(self, message, cells=()):
        super().__init__(message)
        self.cells = list(cells)


class MaterialError(VertebrafeError, ValueError):
    """A material parameter is non-physical (E <= 0, nu outside (-1, 0.5), non-SPD matrix...)."""


class ConstraintError(VertebrafeError, ValueError):
    """Conflicting or malformed boundary conditions (a node both fixed and tied to a plate, ...)."""


class UnderConstrainedError(VertebrafeError):
    """The model can move as a rigid body (or a mechanism); ``free_modes`` names the free motions."""

    def __init__(self, message, free_modes=()):
        super().__init__(message)
        self.free_modes = list(free_modes)


class ConvergenceError(VertebrafeError):
    """An iterative solve stopped before reaching the requested tolerance, or produced non-finite values."""

    def __init__(self, message, iterations=None, residual=None):
        super().__init__(message)
        self.iterations = iterations
        self.residual = residual


class ResourceError(VertebrafeError):
    """A request exceeds a resource limit (memory, grid size, file size): the message gives the estimate and
    the limit."""


class OutputError(VertebrafeError, OSError):
    """An output could not be written (disk full, read-only folder, no permission); what was there before is
    kept and nothing is reported finished."""


class MeshWarning(UserWarning):
    """A mesh is usable but has something worth knowing (unused nodes, data not written...)."""


class PlausibilityWarning(UserWarning):
    """An input or a result is allowed but outside physiological ranges (vBMD given in g/cm^3, a load far
    above body-weight multiples, rotations of tens of degrees); the run goes on (see
    :mod:`vertebrafe.plausibility`)."""


class ResolutionWarning(UserWarning):
    """A result is computed on a mesh too coarse for some of its numbers to be mesh-converged (a cement bolus
    only a few cells across); the inputs are fine and the run goes on (see :mod:`vertebrafe.plausibility`).
    Its messages start with :data:`RESOLUTION_PREFIX`."""


#: The start of every :class:`ResolutionWarning` message: messages kept as text (``Result.warnings``, a
#: study's ``status.json``) are re-issued with their class by :func:`warning_class`.
RESOLUTION_PREFIX = "mesh resolution: "

#: The warnings :func:`vertebrafe.simulate` keeps in ``Result.warnings`` and the record's ``"warnings"``.
RESULT_WARNINGS = (PlausibilityWarning, ResolutionWarning)


def warning_class(message):
    """The warning class of a kept message: :class:`ResolutionWarning` if it starts with
    :data:`RESOLUTION_PREFIX`, else :class:`PlausibilityWarning`."""
    return ResolutionWarning if str(message).startswith(RESOLUTION_PREFIX) else PlausibilityWarning
