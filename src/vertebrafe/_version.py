import functools
import hashlib
import os

__version__ = "0.1.0"


@functools.lru_cache(maxsize=1)
def source_digest():
    """A digest (32 hex characters) of this installation's Python source files, their paths and contents:
    files kept between runs (a study's plate strengths) are reused only by the same code, not by changed code
    that kept the version number. Reads the package's ``.py`` files once per process (about 1 MB)."""
    root = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.blake2b(digest_size=16)
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(n for n in names if n.endswith(".py")):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).replace(os.sep, "/").encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read() + b"\0")
    return digest.hexdigest()
