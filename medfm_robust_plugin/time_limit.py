"""The per-item time limit: corrupted views in worker processes, model calls under a watchdog.

A corruption that never returns (a plugin's endless loop, a solver that does not converge) must not
hang a run, and Python cannot stop a thread. So ``ItemPool`` computes items in worker processes,
one item per worker at a time, and gives each item ``timeout`` seconds from the moment its worker
starts it (not from when it was queued, and not counting the worker's own start-up): a worker past
its deadline is killed, its item comes back as failed, and a fresh worker takes its place while
the others go on. Items come back as they finish, so one slow item never holds back the rest.
Workers are started with ``spawn``: nothing of the parent (threads, locks, GPU state, open files)
leaks into them, and they load the plugins the parent's environment declares.

A model call cannot move to another process (GPU memory, API clients), so ``call_with_time_limit``
runs it on a watchdog thread and stops waiting after the limit. For an API model the HTTP timeouts
end the call itself; a local model's call cannot be interrupted, so it finishes in the background
while the run records its items as failed and goes on.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ItemTimeoutError, MedFMRobustError

if TYPE_CHECKING:  # multiprocessing is imported when a pool starts: the CLI's --help stays fast
    from multiprocessing.connection import Connection

DEFAULT_ITEM_TIMEOUT = 600.0  # seconds; generous, so that only a hang trips it
START_TIMEOUT = 300.0  # seconds a worker may take to import the package and load the task


@dataclass(frozen=True)
class Outcome:
    """One item's result: ``value`` when it finished, else ``error`` (what went wrong)."""

    job: Any
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    timed_out: bool = False


def describe_timeout(seconds: float, what: str) -> str:
    return (
        f"{what} ran past the per-item time limit of {seconds:g} s and was stopped; "
        "raise --item-timeout if it is merely slow"
    )


# ---------------------------------------------------------------------- worker side


def _worker_main(
    conn: Connection,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    compute: Callable[[Any], Any],
    parent: int,
) -> None:
    _end_with_parent(parent)
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # reported to the parent, which stops the run with it
        conn.send(("init_failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        started = time.perf_counter()
        try:
            value = compute(job)
            message = ("done", value, None, time.perf_counter() - started)
        except Exception as exc:
            message = ("done", None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
        try:
            conn.send(message)
        except Exception as exc:  # e.g. a value that does not pickle
            conn.send(("done", None, f"{type(exc).__name__}: {exc}", message[3]))


def _end_with_parent(parent: int) -> None:
    """Have the kernel end this worker when its parent dies (Linux): a parent killed with SIGKILL
    runs no clean-up, and a worker stuck in a hanging item would otherwise run on forever."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)


# ---------------------------------------------------------------------- parent side


@dataclass
class _Worker:
    process: Any
    conn: Connection
    started_at: float
    ready: bool = False
    job: Any = None
    busy: bool = False
    deadline: float = 0.0


class ItemPool:
    """``workers`` processes computing ``compute(job)``, each job under ``timeout`` seconds.

    ``initializer(*initargs)`` runs once in each worker (load the task, open the cache); both it and
    ``compute`` must be importable module-level functions and their arguments picklable.
    ``timeout=None`` means no limit. Use ``map_unordered`` inside ``with ItemPool(...)``.
    """

    def __init__(
        self,
        workers: int,
        compute: Callable[[Any], Any],
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        timeout: float | None = DEFAULT_ITEM_TIMEOUT,
        describe: Callable[[Any], str] = str,
    ) -> None:
        if workers < 1:
            raise ValueError("an ItemPool needs at least one worker")
        if timeout is not None and not timeout > 0:
            raise MedFMRobustError(f"the item time limit must be positive seconds, not {timeout}")
        self.size = workers
        self.compute = compute
        self.initializer = initializer
        self.initargs = initargs
        self.timeout = timeout
        self.describe = describe
        import multiprocessing

        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self.restarts = 0

    def __enter__(self) -> ItemPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_worker(self) -> _Worker:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(child, self.initializer, self.initargs, self.compute, os.getpid()),
            daemon=True,
            name="medfm-robust-item-worker",
        )
        process.start()
        child.close()  # so that the parent sees EOF when the worker dies
        worker = _Worker(process, parent, time.monotonic())
        self._workers.append(worker)
        return worker

    def _stop_worker(self, worker: _Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        with contextlib.suppress(OSError):
            worker.conn.close()
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(2)

    def close(self) -> None:
        """Stop every worker (a busy one is killed: its item is abandoned)."""
        for worker in list(self._workers):
            if worker.ready and not worker.busy:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        for worker in list(self._workers):
            self._stop_worker(worker)

    def map_unordered(
        self, jobs: Iterable[Any], cancel: threading.Event | None = None
    ) -> Iterator[Outcome]:
        """Every job's ``Outcome``, in the order they finish; a timed-out job's says so.

        Setting ``cancel`` (from another thread) stops the workers and ends the iteration.
        """
        pending = iter(jobs)
        exhausted = False
        try:
            while cancel is None or not cancel.is_set():
                while len(self._workers) < self.size and not exhausted:
                    self._start_worker()
                for worker in self._workers:
                    if worker.ready and not worker.busy and not exhausted:
                        try:
                            job = next(pending)
                        except StopIteration:
                            exhausted = True
                            break
                        worker.job, worker.busy = job, True
                        worker.deadline = (
                            time.monotonic() + self.timeout if self.timeout else float("inf")
                        )
                        with contextlib.suppress(OSError):  # a worker that just died: seen below
                            worker.conn.send(job)
                busy = [w for w in self._workers if w.busy]
                if exhausted and not busy:
                    return
                yield from self._collect(0.25 if cancel is not None else None)
        finally:
            self.close()

    def _collect(self, longest: float | None) -> Iterator[Outcome]:
        from multiprocessing.connection import wait

        now = time.monotonic()
        deadlines = [w.deadline for w in self._workers if w.busy and w.deadline < float("inf")]
        deadlines += [w.started_at + START_TIMEOUT for w in self._workers if not w.ready]
        if longest is not None:
            deadlines.append(now + longest)
        wait_for = max(0.0, min(deadlines) - now) if deadlines else None
        ready = wait([w.conn for w in self._workers], timeout=wait_for)
        finished: list[Outcome] = []
        for worker in [w for w in self._workers if w.conn in ready]:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                finished += self._died(worker)
                continue
            kind = message[0]
            if kind == "ready":
                worker.ready = True
            elif kind == "init_failed":
                raise MedFMRobustError(f"a worker process could not start: {message[1]}")
            else:
                _, value, error, seconds = message
                finished.append(Outcome(worker.job, value, error, seconds))
                worker.job, worker.busy = None, False
        # deadlines are checked after every finished result is in: a late reader never kills
        # a worker whose result was already waiting
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.busy and now >= worker.deadline:
                finished.append(
                    Outcome(
                        worker.job,
                        error=describe_timeout(self.timeout or 0, self.describe(worker.job)),
                        seconds=float(self.timeout or 0),
                        timed_out=True,
                    )
                )
                self.restarts += 1
                self._stop_worker(worker)
            elif not worker.ready and now >= worker.started_at + START_TIMEOUT:
                raise MedFMRobustError(
                    f"a worker process did not start within {START_TIMEOUT:g} s; "
                    "use --workers 0 (run) or --num-proc 0 (materialize) to work in this process"
                )
        yield from finished

    def _died(self, worker: _Worker) -> list[Outcome]:
        worker.process.join(2)
        code = worker.process.exitcode
        self._stop_worker(worker)
        self.restarts += 1
        if not worker.ready:
            raise MedFMRobustError(
                f"a worker process exited while starting (exit code {code}). A script that starts "
                'a run must do so under `if __name__ == "__main__":` (workers re-import it); '
                "or use --workers 0 (run) / --num-proc 0 (materialize) to work in one process"
            )
        if not worker.busy:
            return []
        return [
            Outcome(
                worker.job,
                error=f"the worker process computing {self.describe(worker.job)} exited "
                f"(exit code {code}) before it finished",
            )
        ]


def call_with_time_limit(function: Callable[[], Any], seconds: float | None, what: str) -> Any:
    """``function()``, or ``ItemTimeoutError`` once ``seconds`` pass (None: no limit).

    The call runs on a watchdog thread; past the limit it is left to finish in the background
    (a thread cannot be stopped) and its result is dropped.
    """
    if not seconds:
        return function()
    box: dict[str, Any] = {}
    done = threading.Event()

    def call() -> None:
        try:
            box["value"] = function()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=call, daemon=True, name="medfm-robust-model-call")
    thread.start()
    if not done.wait(seconds):
        raise ItemTimeoutError(describe_timeout(seconds, what))
    if "error" in box:
        raise box["error"]
    return box["value"]
