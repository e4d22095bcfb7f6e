"""Names in files: the prefixes of node sets, face sets and tag-name tables in VTU files, and the
percent-encoding of the characters meshio's XML writer would not escape."""
from __future__ import annotations

from urllib.parse import unquote

__all__ = ["NODESET_PREFIX", "FACESET_PREFIX", "TAGNAME_PREFIX", "encode_name", "decode_name"]

NODESET_PREFIX = "nodeset:"
FACESET_PREFIX = "faceset:"
TAGNAME_PREFIX = "tagname:"


_ESCAPE = {"%": "%25", "<": "%3C", ">": "%3E", "&": "%26", '"': "%22", "'": "%27"}


def encode_name(name):
    """Percent-encode the characters meshio's XML writer would not escape (``% < > & " '``)."""
    return "".join(_ESCAPE.get(ch, ch) for ch in name)


def decode_name(name):
    """Inverse of :func:`encode_name`."""
    return unquote(name)
