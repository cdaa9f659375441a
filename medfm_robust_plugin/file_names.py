"""File and folder names made from names of things (sample ids, datasets, models, tasks), such that
two different names never get the same file."""

from __future__ import annotations

import hashlib
import re

_PLAIN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,79}")


def path_part(name: object) -> str:
    """A file or folder name for ``name`` that no other name gets.

    Plain names (lowercase letters, digits, ``_ . -``; up to 80 characters) stay as they are.
    Any other name keeps a readable prefix and gets ``~`` and a hash of the exact name: ``~`` never
    occurs in a plain name, so ``dup/x`` (``dup_x~<hash>``) and ``dup_x`` stay apart, and so do
    ``Case1`` and ``case1`` on file systems that ignore case.
    """
    text = str(name)
    if _PLAIN.fullmatch(text) and not text.endswith("."):
        return text
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80].strip(".") or "_"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable}~{digest}"
