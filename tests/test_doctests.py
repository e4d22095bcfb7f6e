"""The examples in the docstrings of the package run as doctests (each is cheap: coarse meshes)."""
import doctest
import importlib
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "src" / "vertebrafe"


def _modules_with_examples():
    out = []
    for f in sorted(PKG.rglob("*.py")):
        if ">>> " in f.read_text():
            parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


MODULES = _modules_with_examples()


def test_examples_are_found():
    assert {"vertebrafe.case", "vertebrafe.simulate", "vertebrafe.clinical"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name, globs={"tmp_path": tmp_path}) if t.examples]
    assert tests, f"{name}: no examples found"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"
