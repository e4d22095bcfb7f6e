"""Fixtures of the clinical tests."""
import numpy as np
import pytest


def _arrays(seg):
    """Copies of the arrays of ``seg`` that a treatment or a solve could change in place."""
    return [seg.mesh.points.copy(), np.array(seg.elasticity, copy=True)] + [
        np.array(v, copy=True) for v in seg.mesh.cell_data.values()]


@pytest.fixture(scope="session")
def kept_unchanged():
    """``kept_unchanged(seg)`` returns a check that ``seg``'s nodes, elasticity and cell data are as they were
    when it was called: a module fixture that shares a treated segment between tests calls the check after
    the last of them (a test that changed it in place would otherwise pass its change on to the next)."""
    def snapshot(seg):
        before = _arrays(seg)

        def check():
            after = _arrays(seg)
            assert len(after) == len(before) and all(np.array_equal(a, b) for a, b in zip(after, before))
        return check
    return snapshot
