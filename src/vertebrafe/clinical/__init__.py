"""Clinical states of a segment: vertebral compression fracture, vertebroplasty, balloon kyphoplasty,
and radiological measurement.

Each operation takes a :class:`~vertebrafe.Segment` and returns a new one (the input is never modified);
the returned segment's ``history`` (see :func:`history`) records every operation with its resolved
parameters and achieved results.

>>> import vertebrafe as vf
>>> from vertebrafe.clinical import fracture, vertebroplasty, kyphoplasty, measure
>>> seg = vf.segment("T12-L2", bmd=80.0, element_size=6.0)
>>> frac = fracture(seg, "L1", kind="wedge", grade=2)          # Genant grade 2: 32.5 % anterior loss
>>> round(measure(frac, "L1").anterior_height_loss, 3)
0.325
"""
from ._common import Operation, history
from .fracture import FRACTURE_TYPES, GRADE_HEIGHT_LOSS, fracture
from .measure import Measurement, measure
from .cement import APPROACHES, vertebroplasty
from .kyphoplasty import contact_face_grading, kyphoplasty

__all__ = ["Operation", "history", "fracture", "FRACTURE_TYPES", "GRADE_HEIGHT_LOSS", "Measurement", "measure",
           "vertebroplasty", "APPROACHES", "kyphoplasty", "contact_face_grading"]
