"""The posterior share of a standing load in an imposed posture and after a creep loss of disc height
(``posture_hook`` of benchmarks/validation_posterior.py, docs/validation.md "Posterior share of a standing
load"): the exact force split across a level balances the applied load, the share rises with extension,
and the height loss slackens the longitudinal ligaments by exactly its amount."""
import importlib.util
import pathlib

import numpy as np
import pytest

from vertebrafe.anatomy import segment
from vertebrafe.loads import Load
from vertebrafe.post.posterior import level_forces
from vertebrafe.simulate import simulate

H = 6.0
BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "validation_posterior.py"


def _bench():
    spec = importlib.util.spec_from_file_location("validation_posterior", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def seg():
    return segment("L4-L5", bmd=120.0, element_size=H, posterior=True, fibres=False, nucleus="solid")


@pytest.fixture(scope="module")
def runs(seg):
    hook = _bench().posture_hook
    load = Load(compression=500.0, follower=True)
    cases = {(ext, dh): simulate(seg, load, factor_of_risk=False, solver="direct",
                                 user_loads=hook("L4-L5", ext, dh))
             for ext, dh in ((None, 0.0), (0.0, 0.0), (2.0, 0.0), (4.0, 0.0), (2.0, 0.91))}
    return cases


def _split(r):
    F = level_forces(r.segment, r.solution, "L4-L5")
    applied = F.pop("applied")
    post = sum(v for k, v in F.items() if k not in ("disc", "ALL", "PLL"))
    return F, applied, post


def test_force_split_balances_the_applied_load(runs):
    """Disc + longitudinal ligaments + posterior column = the load on the part above L4-L5, every component,
    to 1e-6 of it, whether the posture is free, imposed or after creep (the plate's reaction moment of an
    imposed rotation carries no force); the tension-positive ``axial_force`` rows (mid-height layer of the
    disc) agree with the exact split to 1 % of the load."""
    for (ext, dh), r in runs.items():
        F, applied, _ = _split(r)
        assert applied[2] < -400.0                                     # compression along the disc axis
        assert np.abs(sum(F.values()) - applied).max() < 1e-6 * np.abs(applied).max()
        rows = sum(r.value("axial_force", "L4-L5", k) for k in ("disc", "longitudinal_ligaments", "posterior"))
        assert rows == pytest.approx(applied[2], rel=0.01)


def test_imposed_extension_rotates_the_disc_and_loads_the_facets(runs):
    """The prescribed plate rotation appears across the disc (the bodies are stiff: within 15 %); the facets
    carry nothing in the follower's own (slightly flexed) posture and at the unloaded posture, and their
    force and the posterior column's share of the axial load rise monotonically with extension."""
    free = runs[(None, 0.0)]
    assert free.value("rotation_flexion", "L4-L5", "disc") > 0.0
    for side in ("facet_left", "facet_right"):
        assert free.value("facet_force", "L4-L5", side) == 0.0
    shares, facets = [], []
    for ext in (0.0, 2.0, 4.0):
        r = runs[(ext, 0.0)]
        if ext:
            assert -r.value("rotation_flexion", "L4-L5", "disc") == pytest.approx(ext, rel=0.15)
        _, applied, post = _split(r)
        shares.append(post[2] / applied[2])
        facets.append(r.value("facet_force", "L4-L5", "facet_left"))
    assert facets[0] < 1.0 < facets[1] < facets[2]
    assert shares[0] < shares[1] < shares[2]


def test_height_loss_slackens_the_longitudinal_ligaments(seg, runs):
    """The creep loss of disc height moves each spring's onset by ``-dh (n . a)``: the ALL (along the axis)
    tightens only after ``dh`` more elongation, so that under 2 deg of extension it goes from taut to slack
    after a 0.91 mm loss (the ALL's extension elongation is below that here); the facet joints (normal
    component -0.087 along the axis) start pre-compressed by ``0.087 dh``. Negative losses are refused."""
    hook = _bench().posture_hook
    assert runs[(2.0, 0.0)].value("ligament_force", "L4-L5", "ALL") > 10.0
    assert runs[(2.0, 0.91)].value("ligament_force", "L4-L5", "ALL") == 0.0
    assert (runs[(2.0, 0.91)].value("facet_force", "L4-L5", "facet_left")
            > runs[(2.0, 0.0)].value("facet_force", "L4-L5", "facet_left"))
    from vertebrafe.simulate import build_model
    model, _ = build_model(seg, Load(compression=500.0, follower=True), user_loads=hook("L4-L5", None, 0.91))
    a = seg.frames["L4"][0][:, 2] + seg.frames["L5"][0][:, 2]
    a /= np.linalg.norm(a)
    ref = {s.name: s for s in seg.spring_sets()}
    for s in model.springs:
        if s.name in ("facet_joints", "ligaments"):
            assert np.allclose(s.onset - ref[s.name].onset, -0.91 * (s.direction @ a), atol=1e-12)
    with pytest.raises(ValueError, match="height_loss"):
        hook("L4-L5", None, -0.1)
