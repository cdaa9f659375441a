"""Files written whole or not at all.

A file that a reader in another process (or a rerun after a kill) may open while it is being
written goes through ``replacing``: the content is written to a temporary file in the same folder
(so that the final rename stays on one file system and is atomic) and renamed over the target only
once it is complete. A reader sees the old file, the new one, or none; never half of one. When the
write fails the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(
    path: str | os.PathLike[str],
    *,
    prefix: str = ".tmp-",
    suffix: str | None = None,
    readable: bool = False,
) -> Iterator[Path]:
    """A fresh temporary file beside ``path`` that replaces ``path`` when the block succeeds.

    ``prefix`` starting with a dot keeps an unfinished file out of plain listings; ``suffix``
    (by default the extension of ``path``) keeps the extension that a writer may choose its
    format by. The folder is created if needed. The file is its owner's only (a cache of
    answers stays private); ``readable`` gives it the permissions of any new file under the
    process's umask (outputs others will read).

        with replacing(out / "view.png") as tmp:
            cv2.imwrite(str(tmp), image)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    if readable:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, prefix: str = ".tmp-", suffix: str | None = None
) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it (see ``replacing``)."""
    with replacing(path, prefix=prefix, suffix=suffix) as tmp:
        tmp.write_bytes(data)
