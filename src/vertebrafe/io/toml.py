"""TOML output: the writer of resolved case files (reading is :mod:`tomllib`)."""
from __future__ import annotations

import math
import re

__all__ = ["to_toml", "toml_string", "comment"]

def to_toml(d):
    """Serialise a resolved case dict (nested tables of scalars, strings, lists) as TOML text."""
    lines = []

    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v) if not isinstance(v, float) or math.isfinite(v) else ("nan" if v != v else
                                                                               ("inf" if v > 0 else "-inf"))
        if isinstance(v, str):
            return toml_string(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):                          # an inline table (in an array of tables)
            return "{" + ", ".join(f"{_key(k)} = {scalar(x)}" for k, x in v.items()) + "}"
        raise TypeError(f"cannot write {v!r} to TOML")

    def table(prefix, d):
        plain = {k: v for k, v in d.items() if not isinstance(v, dict)}
        sub = {k: v for k, v in d.items() if isinstance(v, dict)}
        if prefix and (plain or not sub):
            lines.append(f"[{prefix}]")
        for k, v in plain.items():
            lines.append(f"{_key(k)} = {scalar(v)}")
        if plain:
            lines.append("")
        for k, v in sub.items():
            table(f"{prefix}.{_key(k)}" if prefix else _key(k), v)

    table("", d)
    return "\n".join(lines).rstrip() + "\n"


def toml_string(v):
    """A TOML basic string: every control character escaped, other characters (any plane) kept."""
    return '"' + re.sub(r'[\x00-\x1f\x7f"\\]', lambda m: {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}.get(
        m.group(), f"\\u{ord(m.group()):04x}"), v) + '"'


def _key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else toml_string(k)


def comment(text):
    """``text`` as one TOML comment line (``# ...``, control characters replaced, at most 200 characters)."""
    return "# " + re.sub(r"[\x00-\x1f\x7f]", "?", str(text))[:200] + "\n"

