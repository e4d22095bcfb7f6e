"""The import graph of the package against the allowed-imports table of docs/architecture.md.

Every ``import`` of ``src/vertebrafe`` (module level and inside functions) is read with :mod:`ast`. A
top-level module or package ("unit") may import only the units its table row allows; no module may be
part of an import cycle; no private name is imported from another module.
"""
import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "vertebrafe"
DOC = ROOT / "docs" / "architecture.md"


def _modules():
    """``{dotted name: (path, is_package)}`` of every module of the package."""
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


MODULES = _modules()


def _imports(name):
    """``[(target module, imported name or None, line)]`` of module ``name`` (vertebrafe targets only)."""
    path, is_pkg = MODULES[name]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".")[: None if is_pkg else -1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.append((sub, None, node.lineno) if sub in MODULES else (base, a.name, node.lineno))
    return [(t, n, line) for t, n, line in found if t == "vertebrafe" or t.startswith("vertebrafe.")]


def _unit(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "vertebrafe"


def _table():
    """Rows of the allowed-imports table: ``{unit: (floor, set of allowed entries or None for any)}``."""
    text = DOC.read_text()
    start = text.index("<!-- allowed-imports")
    rows = {}
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("floor", "---") or set(cells[0]) <= {"-"} and cells[1].startswith("-"):
            continue
        floor, modules, allowed = cells[0], cells[1], cells[3]
        names = re.findall(r"`([^`]+)`", modules)
        entries = None if allowed == "any" else {a.strip() for a in allowed.split(",") if a.strip() not in ("-", "")}
        for n in names:
            if n == "__init__":
                continue
            rows[n] = (None if floor == "-" else int(floor), entries)
    return rows


TABLE = _table()


def _allowed(unit, target):
    floor, entries = TABLE[unit]
    if entries is None:
        return True
    tu = _unit(target)
    rest = target.split(".")[2:]
    return tu in entries or any(rest and f"{tu}.{'.'.join(rest[:i + 1])}" in entries for i in range(len(rest)))


def test_table_names_every_module_and_only_existing_ones():
    units = {_unit(m) for m in MODULES}
    assert units - set(TABLE) == set(), "modules missing from the table in docs/architecture.md"
    assert set(TABLE) - units == set(), "the table in docs/architecture.md names modules that do not exist"


def test_table_points_down():
    """Every allowed import goes to a lower floor or the same floor, never up."""
    for unit, (floor, entries) in TABLE.items():
        for e in entries or ():
            target = e.split(".")[0]
            assert target in TABLE, f"{unit}: unknown entry {e!r}"
            assert floor is None or TABLE[target][0] <= floor, f"{unit} (floor {floor}) may import {e} (higher)"


def test_imports_follow_the_table():
    bad = []
    for mod in MODULES:
        unit = _unit(mod)
        for target, _, line in _imports(mod):
            if _unit(target) != unit and not _allowed(unit, target):
                bad.append(f"{mod}:{line} imports {target}")
    assert not bad, "imports not allowed by docs/architecture.md:\n" + "\n".join(bad)


def test_no_private_names_across_modules():
    bad = []
    for mod in MODULES:
        for target, name, line in _imports(mod):
            private_name = name is not None and name.startswith("_") and not name.startswith("__")
            private_module = any(p.startswith("_") and not p.startswith("__") for p in target.split(".")[1:])
            package = mod if MODULES[mod][1] else mod.rsplit(".", 1)[0]
            same_package = target.rsplit(".", 1)[0] == package
            if target == mod or (private_module and same_package and not private_name):
                continue
            if private_name or (private_module and target != "vertebrafe._version"):
                bad.append(f"{mod}:{line} imports {name or ''} from {target}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = {m: {t for t, _, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):                                   # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("row", ["cli", "viz", "anatomy", "fem"])
def test_the_table_is_read(row):
    """The parser finds the rows (a table the test cannot read would let everything pass)."""
    assert row in TABLE and TABLE[row][1] is not None and len(TABLE) > 15
