"""Verification tests: closed-form and manufactured solutions for the FE core.

The mesh builders live in ``vf_helpers.py`` (a uniquely named module, so that it cannot clash with
other test folders' ``conftest`` modules); this file makes sure it is importable and offers fixtures.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def rng():
    """A seeded random generator (reproducible distortions)."""
    return np.random.default_rng(12345)
