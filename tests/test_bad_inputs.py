"""Bad inputs, table-driven: case files, study files, CLI options and API calls. Each must raise a
vertebrafe error (or exit 1/2 with a one-line message) whose text names the field, the value and what is
allowed; nothing runs, nothing is written."""
import copy
import os

import numpy as np
import pytest

from vertebrafe import cli
from vertebrafe.case import load_case, parse_case
from vertebrafe.errors import VertebrafeError
from vertebrafe.study import parse_study

BASE = {"segment": {"levels": "L1-L2", "element_size": 6.0}, "bone": {"bmd": 80.0},
        "load": {"preset": "relaxed_standing"}}


def case(**changes):
    """BASE with ``{"section__key": value}`` changes (value None deletes the key; "section" alone sets a table)."""
    raw = copy.deepcopy(BASE)
    for k, v in changes.items():
        section, _, key = k.partition("__")
        if not key:
            if v is None:
                raw.pop(section, None)
            else:
                raw[section] = v
        elif v is None:
            raw[section].pop(key, None)
        else:
            raw.setdefault(section, {})[key] = v
    return raw


CASES = [
    ("element_size-small", case(segment__element_size=0.1), ["segment.element_size = 0.1", "out of range", "[0.5, 10]"]),
    ("element_size-string", case(segment__element_size="3"), ["segment.element_size = '3'", "expected a number"]),
    ("element_size-nan", case(segment__element_size=float("nan")), ["segment.element_size", "not finite"]),
    ("levels-unknown", case(segment__levels="L1-X9"), ["segment.levels", "X9"]),
    ("levels-gap", case(segment__levels=["L1", "L3"]), ["segment.levels", "consecutive"]),
    ("levels-empty", case(segment__levels=""), ["segment.levels = ''"]),
    ("scale", case(segment__scale=3.0), ["segment.scale = 3", "(0.5, 2)"]),
    ("cortex-layers", case(segment__n_cortex_layers=0), ["segment.n_cortex_layers = 0", "[1, 4]"]),
    ("override-level", case(segment__overrides={"L9": {"anterior_height": 20.0}}), ["segment.overrides", "L9"]),
    ("override-range", case(segment__overrides={"L1": {"anterior_height": -3.0}}), ["anterior_height", "-3"]),
    ("bmd-zero", case(bone__bmd=0), ["bone.bmd = 0", "out of range", "(0, 400]"]),
    ("bmd-high", case(bone__bmd=500.0), ["bone.bmd = 500", "(0, 400]"]),
    ("bmd-tiny", case(bone__bmd=1e-300), ["bone.bmd = 1e-300", "no usable cancellous modulus", "allowed"]),
    ("bmd-and-t", case(bone__t_score=-2.0), ["bone.bmd", "bone.t_score", "exactly one"]),
    ("bmd-missing", case(bone={"law": "morgan2003_vertebra"}), ["bone.bmd", "is missing"]),
    ("t_score-low", case(bone={"t_score": -6.0}), ["bone.t_score = -6", "vBMD <= 0", "above -5.67"]),
    ("t_score-range", case(bone={"t_score": -9.0}), ["bone.t_score = -9", "[-8, 4]"]),
    ("transverse-ratio", case(bone__anisotropic=True, bone__transverse_ratio=1e-12),
     ["bone.transverse_ratio = 1e-12", "singular", "allowed"]),
    ("law", case(bone__law="foo"), ["bone.law = 'foo'", "allowed one of"]),
    ("anisotropic-type", case(bone__anisotropic="yes"), ["bone.anisotropic = 'yes'", "true or false"]),
    ("bone-unknown-key", case(bone__bmdd=80.0), ["bone.bmdd", "not a known key"]),
    ("unknown-section", case(foo={"x": 1}), ["[foo]", "not a known section"]),
    ("missing-load", case(load=None), ["[load]", "is missing"]),
    ("fracture-level", case(fracture={"level": "L5"}), ["fracture.level = 'L5'", "not in segment.levels"]),
    ("fracture-grade", case(fracture={"level": "L1", "grade": 4}), ["fracture.grade = 4", "one of 1, 2, 3"]),
    ("fracture-both", case(fracture={"level": "L1", "grade": 2, "height_loss": 0.3}), ["at most one"]),
    ("height-loss", case(fracture={"level": "L1", "height_loss": 0.9}), ["fracture.height_loss = 0.9", "(0, 0.6]"]),
    ("treatment-kind", case(treatment={"kind": "cement"}), ["treatment.kind = 'cement'", "allowed one of"]),
    ("volume-negative", case(treatment={"kind": "vertebroplasty", "level": "L1", "volume": -1.0}),
     ["treatment.volume = -1", "(0, 20]"]),
    ("offset-shape", case(treatment={"kind": "vertebroplasty", "level": "L1", "offset": [1.0, 2.0]}),
     ["treatment.offset", "wrong shape", "three numbers"]),
    ("offset-range", case(treatment={"kind": "vertebroplasty", "level": "L1", "offset": [0.0, 50.0, 0.0]}),
     ["treatment.offset[1] = 50", "[-20, 20]"]),
    ("compression", case(load={"compression": -5.0}), ["load.compression = -5", "out of range; allowed [0, "]),
    ("flexion", case(load={"flexion": 1e9}), ["load.flexion = 1e+09", "[0, 100]"]),
    ("preset", case(load={"preset": "standing"}), ["load.preset = 'standing'", "allowed one of"]),
    ("rtol", case(solver={"rtol": 0.0}), ["solver.rtol = 0", "[1e-14, 0.01]"]),
    ("solver", case(solver={"solver": "cg"}), ["solver.solver = 'cg'", "'auto'"]),
    ("maxiter", case(solver={"maxiter": 1.5}), ["solver.maxiter = 1.5", "expected an integer"]),
    ("vtu", case(output={"vtu": "no"}), ["output.vtu = 'no'", "true or false"]),
    ("name-newline", case(case={"name": "a\n[bone]\nbmd = 1"}), ["case.name", "control characters"]),
    ("name-long", case(case={"name": "x" * 201}), ["case.name", "201 characters", "at most 200"]),
    ("name-5MB", case(case={"name": "x" * 5_000_000}), ["case.name", "5000000 characters", "at most 200"]),
    ("description-long", case(case={"description": "x" * 20_000}), ["case.description", "at most 10000"]),
    ("case-not-table", [], ["expected a table of sections"]),
]


@pytest.mark.parametrize("label, raw, parts", CASES, ids=[c[0] for c in CASES])
def test_bad_case(label, raw, parts):
    with pytest.raises(VertebrafeError) as e:
        parse_case(raw)
    msg = str(e.value)
    assert all(p in msg for p in parts), msg
    assert len(msg) < 600


def _big(path):
    with open(path, "wb") as f:
        f.write(b"# " + b"x" * (2 << 20) + b"\n")


FILES = [
    ("dev-zero", lambda d: "/dev/zero", ["/dev/zero", "not a regular file"]),
    ("2MB", lambda d: (_big(d / "big.toml"), d / "big.toml")[1], ["big.toml", "bytes; allowed: at most 1048576"]),
    ("missing", lambda d: d / "nope.toml", ["nope.toml: file not found"]),
    ("directory", lambda d: d, ["is a directory"]),
    ("syntax", lambda d: ((d / "s.toml").write_text("[bone\nbmd = 80"), d / "s.toml")[1], ["s.toml: invalid TOML"]),
    ("not-utf8", lambda d: ((d / "u.toml").write_bytes(b"name = '\xff'"), d / "u.toml")[1], ["not UTF-8"]),
]


@pytest.mark.parametrize("label, make, parts", FILES, ids=[f[0] for f in FILES])
def test_bad_case_file(tmp_path, label, make, parts):
    with pytest.raises(VertebrafeError) as e:
        load_case(make(tmp_path))
    assert all(p in str(e.value) for p in parts), str(e.value)


def study(**changes):
    raw = {"study": {"name": "s"}, "base": copy.deepcopy(BASE), "grid": {"bone.bmd": [60.0, 80.0]}}
    raw.update(changes)
    return raw


PLOT = {"metric": "von_mises_p95", "x": "bone.bmd", "y": "value"}
STUDIES = [
    ("grid-huge", study(grid={"bone.bmd": list(np.linspace(50, 150, 30)), "segment.element_size":
                              list(np.linspace(3, 8, 30)), "load.compression": list(np.linspace(100, 900, 30))}),
     ["27000 cases", "at most 10000"]),
    ("plot-name", study(summary={"plots": [dict(PLOT, name="../../x")]}), ["summary.plots[0].name = '../../x'",
                                                                          "not a safe file name"]),
    ("plot-abs-name", study(summary={"plots": [dict(PLOT, name="/tmp/x")]}), ["not a safe file name"]),
    ("plot-metric-missing", study(summary={"plots": [{"x": "bone.bmd", "y": "value"}]}),
     ["summary.plots[0].metric", "is missing"]),
    ("plot-ratio-without-reference", study(summary={"plots": [dict(PLOT, y="ratio")]}), ["needs summary.reference"]),
    ("plot-y", study(summary={"plots": [dict(PLOT, y="percent")]}), ["summary.plots[0].y = 'percent'", "allowed"]),
    ("plot-key", study(summary={"plots": [dict(PLOT, colour="red")]}), ["summary.plots[0].colour", "not a known key"]),
    ("grid-scalar", study(grid={"bone.bmd": 60.0}), ["grid.bone.bmd = 60", "expected a non-empty array"]),
    ("grid-no-dot", study(grid={"bmd": [60.0]}), ["grid.bmd", "is not a case key"]),
    ("grid-bad-value", study(grid={"bone.bmd": [60.0, 0.0]}), ["bone.bmd = 0", "out of range"]),
    ("variant-twice", study(variants=[{"name": "a"}, {"name": "a"}]), ["variants[1].name = 'a'", "used twice"]),
    ("variant-key", study(variants=[{"name": "a", "bone.bmd": 3}]), ["variants[0].bone.bmd", "not a known key"]),
    ("variant-grid-twice", study(variants=[{"name": "a", "grid": {"bone.bmd": [70.0]}}]),
     ["variants[0].grid.bone.bmd", "one place only"]),
    ("reference", study(summary={"reference": "NSM"}), ["summary.reference = 'NSM'", "not a variant"]),
    ("unknown-section", study(foo={}), ["[foo]", "not a known study section"]),
    ("missing-study", {"base": BASE}, ["[study] is missing"]),
    ("base-dev-zero", study(study={"name": "s", "base": "/dev/zero"}), ["/dev/zero", "not a regular file"]),
    ("plot-metric-typo", study(summary={"plots": [dict(PLOT, metric="von_mises_p59")]}),
     ["summary.plots[0].metric = 'von_mises_p59' is not a metric", "von_mises_p95"]),
    ("plot-region", study(summary={"plots": [dict(PLOT, region="bones")]}), ["region = 'bones' is not a region"]),
    ("plot-relation", study(summary={"plots": [dict(PLOT, relation="above")]}), ["relation = 'above'", "'L1-L2'"]),
    ("plot-x-not-swept", study(summary={"plots": [dict(PLOT, x="foo.bar")]}),
     ["summary.plots[0].x = 'foo.bar' is not a swept key", "['bone.bmd']"]),
    ("plot-hue", study(summary={"plots": [dict(PLOT, hue="bone.law")]}), ["hue = 'bone.law' is neither 'variant'"]),
    ("plot-averages-a-key", study(grid={"bone.bmd": [60.0, 80.0], "treatment.volume": [2.0, 4.0]},
                                  base=dict(BASE, fracture={"level": "L1"}, treatment={"kind": "vertebroplasty"}),
                                  summary={"plots": [PLOT]}),
     ["would average over treatment.volume (swept, but on no axis)", "facet = 'treatment.volume'"]),
    ("plot-averages-variants", study(grid={"bone.bmd": [60.0, 80.0], "segment.element_size": [5.0, 6.0]},
                                     variants=[{"name": "a"}, {"name": "b", "set": {"bone.law": "kopperdahl2002"}}],
                                     summary={"plots": [dict(PLOT, hue="segment.element_size")]}),
     ["would average over variant"]),
    ("plot-no-hue", study(summary={"plots": [dict(PLOT, hue="")]}), ["hue = '' is neither 'variant'"]),
]


@pytest.mark.parametrize("label, raw, parts", STUDIES, ids=[s[0] for s in STUDIES])
def test_bad_study(label, raw, parts):
    with pytest.raises(VertebrafeError) as e:
        parse_study(raw)
    assert all(p in str(e.value) for p in parts), str(e.value)


TINY = "[segment]\nlevels = 'L1-L2'\nelement_size = 6.0\n[bone]\nbmd = 80.0\n[load]\npreset = 'relaxed_standing'\n"
STUDY = "[study]\nname = 's'\nbase = 'tiny.toml'\n[grid]\n'bone.bmd' = [60.0, 80.0]\n"
CLI = [
    ("run-empty-output", ["run", "tiny.toml", "-o", ""], 1, "-o/--output = '' is empty"),
    ("run-cwd", ["run", "tiny.toml", "-o", "."], 1, "that is not an earlier vertebrafe run output"),
    ("run-existing-file", ["run", "tiny.toml", "-o", "data.csv"], 1, "'data.csv' is an existing file"),
    ("run-study-file", ["run", "study.toml", "-o", "o"], 1, "is a study file"),
    ("run-set-no-dot", ["run", "tiny.toml", "-o", "o", "--set", "bmd=60"], 1, "--set 'bmd=60'"),
    ("run-set-range", ["run", "tiny.toml", "-o", "o", "--set", "bone.bmd=0"], 1, "bone.bmd = 0 is out of range"),
    ("run-no-output", ["run", "tiny.toml"], 2, "-o/--output"),
    ("run-dev-zero", ["run", "/dev/zero", "-o", "o"], 1, "not a regular file"),
    ("mesh-existing", ["mesh", "tiny.toml", "-o", "data.csv"], 1, "'data.csv' exists; allowed: a new file"),
    ("study-workers", ["study", "study.toml", "-o", "o", "--workers", "0"], 1, "--workers = 0"),
    ("study-foreign-dir", ["study", "study.toml", "-o", "."], 1, "not a study folder"),
    ("study-case-file", ["study", "tiny.toml", "-o", "o"], 1, "is not a known study section"),
    ("report-empty", ["report", "."], 1, "neither a study directory"),
    ("unknown-command", ["frobnicate"], 2, "invalid choice"),
]


@pytest.mark.parametrize("label, argv, code, part", CLI, ids=[c[0] for c in CLI])
def test_bad_cli(tmp_path, monkeypatch, capsys, label, argv, code, part):
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "study.toml").write_text(STUDY)
    (tmp_path / "data.csv").write_text("mine")
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert part in err, err
    if code == 1:
        assert err.startswith("vertebrafe: error: ") and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == before and (tmp_path / "data.csv").read_text() == "mine"


def _api_calls():
    import scipy.sparse as sp

    import vertebrafe as vf
    from vertebrafe.fem import solvers
    from vertebrafe.outputs import check_name
    from vertebrafe.resources import check_memory, estimate_segment

    K = sp.identity(6, format="csr")
    return [
        ("solve-nan-load", lambda d: solvers.solve(K, np.full(6, np.nan)), "non-finite values"),
        ("solver-name", lambda d: solvers.choose("cg", 10), "solver = 'cg'"),
        ("solve-rtol", lambda d: solvers.solve(K, np.ones(6), rtol=2.0), "rtol = 2.0; allowed range (0, 1)"),
        ("memory", lambda d: check_memory(estimate_segment("T10-L5", 0.5), "segment.element_size = 0.5 mm",
                                          available=8e9), "available 8 GB; allowed: a model that fits"),
        ("run_case-out-file", lambda d: vf.run_case(BASE, out=(d / "f.txt").write_text("x") and d / "f.txt"),
         "is an existing file"),
        ("segment-levels", lambda d: vf.segment("L1-L9", bmd=80.0), "L9"),
        ("name", lambda d: check_name("../x", "summary.plots[0].name"), "'../x' is not a safe file name"),
        ("model-force", lambda d: vf.Model(vf.box((1, 1, 1), (1, 1, 1)), E=100.0, nu=0.3).add_force(
            [0], (np.inf, 0.0, 0.0)), "finite"),
        ("bow-tie-hex", lambda d: _bow_tie().solve(), "twisted, inverted or degenerate"),
    ]


def _bow_tie():
    """A unit cube whose top face has two nodes swapped (crossed faces), fixed below and loaded on top."""
    import vertebrafe as vf

    box = vf.box((1.0, 1.0, 1.0), (1, 1, 1))
    model = vf.Model(vf.Mesh(box.points, box.cells[:, [0, 1, 2, 3, 5, 4, 7, 6]]), E=100.0, nu=0.3)
    model.fix(np.arange(4))
    model.add_force([4, 5, 6, 7], (0.0, 0.0, -1.0))
    return model


def test_bow_tie_named_on_one_numba_thread():
    """A singular cell inside the serial twins of the assembly kernels (one numba thread: study workers, the
    suite's xdist workers) raises ZeroDivisionError in the kernel, where the parallel builds raise SystemError:
    both are reported as the same InvertedElementError naming the cell."""
    from vertebrafe.errors import InvertedElementError
    from vertebrafe.fem.jit import numba_threads

    with numba_threads(1), pytest.raises(InvertedElementError, match="twisted, inverted or degenerate") as e:
        _bow_tie().solve()
    assert "first: [0]" in str(e.value)


@pytest.mark.parametrize("i", range(9))
def test_bad_api_call(tmp_path, i):
    label, call, part = _api_calls()[i]
    with pytest.raises(VertebrafeError) as e:
        call(tmp_path)
    assert part in str(e.value), (label, str(e.value))


def test_at_least_sixty_bad_inputs():
    assert len(CASES) + len(FILES) + len(STUDIES) + len(CLI) + len(_api_calls()) >= 60
