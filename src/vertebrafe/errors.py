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
