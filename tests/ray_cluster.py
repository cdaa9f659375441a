"""A real Ray cluster on this machine that can reach nothing but itself.

Started plainly, Ray binds and connects to the machine's outward interface. Here the head and one
more worker node (1 CPU each) run in a network namespace of their own with only loopback up: a
holder process is started under ``unshare -n``, and every Ray command joins its namespace through
``nsenter``. Stopping kills exactly the processes in that namespace, by their ids (never ``ray
stop``, which ends every Ray process of the machine).

    with LoopbackRayCluster() as cluster:
        cluster.run([sys.executable, "-m", "medfm_robust_plugin", "materialize", ...,
                     "--executor", "ray", "--ray-address", cluster.address])
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PORT = 6399


def missing_tools() -> str | None:
    """Why a loopback-only cluster cannot start here, or None."""
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (util-linux / iproute2)"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"unshare -n is not permitted here: {probe.stderr.strip()}"
    try:
        import ray  # noqa: F401  (imported to check that it is installed, not started)
    except ImportError:
        return "ray is not installed (pip install 'medfm-robust-plugin[ray]')"
    return None


def ray_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", **extra}
    env.pop("RAY_ADDRESS", None)
    return env


# The cluster's token (Ray's token authentication), handed to its nodes and drivers, so that no
# token file in the home folder is read or written.
TOKEN = secrets.token_hex(16)


class LoopbackRayCluster:
    """A head and ``workers`` more nodes, ``cpus`` CPUs each, in a loopback-only namespace."""

    def __init__(self, workers: int = 1, cpus: int = 1) -> None:
        self.workers = workers
        self.cpus = cpus
        self.address = f"127.0.0.1:{PORT}"
        self.temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: socket paths
        self.holder: subprocess.Popen | None = None

    def __enter__(self) -> LoopbackRayCluster:
        self.holder = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600"]
        )
        deadline = time.monotonic() + 10
        while self._netns(self.holder.pid) == self._netns(os.getpid()):
            if time.monotonic() > deadline:
                raise RuntimeError("the network namespace for Ray did not come up")
            time.sleep(0.05)
        node = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus)]
        try:
            self.run(
                [*_ray(), "start", "--head", "--port", str(PORT), *node,
                 "--include-dashboard", "false", "--disable-usage-stats",
                 "--temp-dir", str(self.temp)],
                check=True,
            )  # fmt: skip
            for _ in range(self.workers):
                self.run([*_ray(), "start", "--address", self.address, *node], check=True)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, args: list[str], **options: Any) -> subprocess.CompletedProcess:
        """``args`` run in the cluster's namespace; their output captured as text."""
        options.setdefault("env", self.env())
        return subprocess.run(
            self.command(args), capture_output=True, text=True, timeout=300, **options
        )

    def popen(self, args: list[str], **options: Any) -> subprocess.Popen:
        options.setdefault("env", self.env())
        return subprocess.Popen(self.command(args), **options)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process of this cluster: its token, no usage reports."""
        return ray_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN, **extra)

    def command(self, args: list[str]) -> list[str]:
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), "-n", *args]

    def processes(self) -> dict[int, str]:
        """The processes in the cluster's namespace (the holder's aside): pid -> command line."""
        assert self.holder is not None
        ours = self._netns(self.holder.pid)
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.holder.pid:
                continue
            try:
                if self._netns(int(entry.name)) != ours:
                    continue
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            found[int(entry.name)] = cmdline.strip()
        return found

    def stop(self) -> None:
        """End every process of the namespace by its id, then the holder; remove the temp dir."""
        if self.holder is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.processes()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 2
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
        self.holder.kill()
        self.holder.wait()
        self.holder = None
        shutil.rmtree(self.temp, ignore_errors=True)

    @staticmethod
    def _netns(pid: int) -> str:
        return os.readlink(f"/proc/{pid}/ns/net")


def _ray() -> list[str]:
    return [str(Path(sys.executable).with_name("ray"))]
