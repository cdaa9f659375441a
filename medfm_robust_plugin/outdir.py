"""One writer per output directory: the lock that ``run`` and ``materialize`` hold while they write.

Two processes appending to one manifest or one records file would both do every item and
interleave their lines. The lock is ``<dir>/.medfm-robust.lock``, held with ``flock`` (the kernel
releases it when its process dies, however it dies, so a lock left by a killed process is taken over
at once) and holding JSON that names the holder: pid, host, start time and command. A second process
either refuses with that holder in its message or, asked to ``wait``, polls until it is free.
Where ``fcntl`` is missing (Windows) the file itself is the lock (created with ``O_EXCL``) and one
left by a dead process on this host is taken over.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import OutputDirBusyError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".medfm-robust.lock"
POLL_SECONDS = 0.5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """Who holds an output directory."""

    pid: int
    host: str
    started: str  # ISO 8601 with the UTC offset
    command: str

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on host {self.host}, started {self.started})"

    def is_dead_here(self) -> bool:
        """True when the holder ran on this host and its process is gone."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False


def read_holder(directory: str | os.PathLike) -> Holder | None:
    """The holder written in ``directory``'s lock file (None when there is none or it is unreadable)."""
    try:
        data: dict[str, Any] = json.loads((Path(directory) / LOCK_NAME).read_text("utf-8"))
        return Holder(
            int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class OutputDirLock:
    """Hold ``directory`` for one writer: ``with OutputDirLock(out, "materialize"): ...``.

    ``wait=False`` raises ``OutputDirBusyError`` naming the holder when another process has it;
    ``wait=True`` waits until it is released. Released on exit, exception included.
    """

    def __init__(self, directory: str | os.PathLike, command: str, wait: bool = False) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.command = command
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> OutputDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        announced = False
        while True:
            taken = self._try_flock() if fcntl is not None else self._try_exclusive()
            if taken:
                return
            holder = self._holder()
            where = holder.describe() if holder else "a process that has not written its name yet"
            if not self.wait:
                raise OutputDirBusyError(
                    f"'{self.directory}' is in use by another writer: {where}. Wait for it to "
                    "finish (or pass --wait to wait for it), or write to another --out"
                )
            if not announced:
                log.warning("'%s' is in use by %s; waiting for it to finish", self.directory, where)
                announced = True
            time.sleep(POLL_SECONDS)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            # unlink while still holding it: a waiter that opened the old file sees it replaced
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    # ------------------------------------------------------------------ flock

    def _try_flock(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if current is None or not os.path.samestat(os.fstat(fd), current):
            os.close(fd)  # the holder released and removed the file we opened: try again
            return self._try_flock()
        os.ftruncate(fd, 0)
        os.write(fd, self._content())
        self._fd = fd
        return True

    # ------------------------------------------------------------------ O_EXCL (no fcntl)

    def _try_exclusive(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = read_holder(self.directory)
            if holder is not None and holder.is_dead_here():
                log.warning(
                    "taking over '%s' from %s, which is gone", self.directory, holder.describe()
                )
                self.path.unlink(missing_ok=True)
                return self._try_exclusive()
            return False
        os.write(fd, self._content())
        self._fd = fd
        return True

    # ------------------------------------------------------------------ holder

    def _content(self) -> bytes:
        holder = Holder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now().astimezone().isoformat(timespec="seconds"),
            command=self.command,
        )
        return json.dumps(asdict(holder)).encode("utf-8")

    def _holder(self) -> Holder | None:
        # the holder writes its name just after taking the lock: give it a moment
        for _ in range(10):
            holder = read_holder(self.directory)
            if holder is not None:
                return holder
            time.sleep(0.02)
        return None
