"""Verification tests: closed-form and manufactured solutions for the FE core.

The mesh builders live in ``vf_helpers.py`` (a uniquely named module, so that it cannot clash with
other test folders' ``conftest`` modules; pytest puts this folder on the path for its tests); the problems
shared with the benchmarks are in :mod:`vertebrafe.verification`. This file offers fixtures.
"""
import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded random generator (reproducible distortions)."""
    return np.random.default_rng(12345)
