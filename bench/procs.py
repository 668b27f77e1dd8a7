"""Child processes of the bench: start, pin, wait until ready, measure CPU, stop.

Each server runs in its own process (`python -m bench.servers <kind>`), so the server under test
has a core to itself and its CPU time can be read from /proc. Children run in their own session
so that a Ctrl-C at the terminal reaches only the bench, which then stops them in order (the
gateway drains and, under --profile, writes its profile). Should the bench die without cleaning
up, the children get SIGTERM from the kernel (PR_SET_PDEATHSIG, set in `bench.servers`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
_CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# Every child started and not yet reaped: the atexit hook kills what an error path left behind.
_LIVE: set[subprocess.Popen[bytes]] = set()


@dataclass(frozen=True)
class Placement:
    """Which CPU each party runs on; -1 means "not pinned" (a one-CPU machine)."""

    server: int
    client: int
    sandbox: int
    worker: int  # the split layout's worker process (it takes no webhooks)

    @classmethod
    def choose(cls) -> Placement:
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # not Linux: no pinning
            return cls(-1, -1, -1, -1)
        if len(cpus) < 2:
            return cls(-1, -1, -1, -1)
        # The server under test gets the first CPU alone. The sandbox and the worker only
        # matter in the gateway phases; on 2 CPUs they share the load generator's core.
        sandbox = cpus[2] if len(cpus) > 2 else cpus[1]
        worker = cpus[3] if len(cpus) > 3 else cpus[1]
        return cls(cpus[0], cpus[1], sandbox, worker)

    def describe(self, worker: bool = False) -> str:
        """Where everything runs; `worker`: the split layout's worker process runs too."""
        if self.server < 0:
            return "not pinned (fewer than 2 CPUs: the numbers mix server and client cost)"
        under_test = "edge (server under test)" if worker else "server under test"
        text = (
            f"{under_test} on CPU {self.server}, load generator on CPU {self.client}, "
            f"sandbox on CPU {self.sandbox}"
        )
        if worker:
            shared = " (shares the load generator's core)" if self.worker == self.client else ""
            text += f", worker on CPU {self.worker}{shared}"
        return text


def pin_self(cpu: int) -> None:
    if cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def first_in_line(pid: int) -> bool:
    """Give a process the real-time class SCHED_FIFO (lowest real-time priority): when it wakes,
    it runs at once, ahead of the worker draining its backlog on the same core. False where
    that is not allowed (not root, no CAP_SYS_NICE, not Linux): it then runs as it is.

    For the parties that stand for something outside the gateway's machine (the load
    generator is Telegram; Redis is a service with a core of its own in production). The
    kernel still keeps 5 % of every second for the other classes (sched_rt_runtime_us).
    """
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(1))
        # The call sets one thread; threads started later inherit it, those already running
        # (wrk's, Redis' I/O and background threads) are set here.
        for thread in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setscheduler(int(thread), os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return False
    return True


class RedisServer:
    """The bench's own Redis: `redis-server` on a free port, pinned to `cpu`, nothing on disk.

    With `data_dir` it keeps its data there in an append-only file, as the README asks of
    production, so that `restart` brings it back with everything it had acknowledged.
    """

    def __init__(self, cpu: int, log_dir: Path, data_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_dir / "redis.log"
        self.cpu_index = cpu
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--save", "", "--logfile", str(self.log_path)]
        if data_dir is None:
            argv += ["--appendonly", "no"]
        else:
            argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data_dir)]
        self.argv = argv
        self.process = self._start()
        self.prioritized = False

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _LIVE.add(process)
        if self.cpu_index >= 0:
            os.sched_setaffinity(process.pid, {self.cpu_index})
        return process

    async def restart(self) -> None:
        """Stop (SIGTERM: Redis writes and syncs its append-only file first) and start again
        on the same port."""
        await self.stop()
        self.process = self._start()
        await self.wait_ready()

    async def wait_ready(self, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"redis-server exited with code {self.process.returncode}")
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"redis-server not ready after {within:.0f}s") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

    def cpu(self) -> float | None:
        return cpu_seconds(self.process.pid)

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _LIVE.discard(self.process)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int | None = None) -> float | None:
    """User + system CPU time of a process (None where /proc is missing)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after it are plain numbers.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def machine_busy_seconds() -> float | None:
    """CPU time all processes on the machine used so far (for spotting foreign load)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLOCK_TICK


class Child:
    """One server subprocess; its output goes to a log file, shown when it fails."""

    def __init__(
        self, name: str, args: Sequence[str], log_dir: Path, port: int | None = None
    ) -> None:
        self.name = name
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        # The children import the repo's packages wherever the bench was started from.
        path = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.servers", *args, "--port", str(self.port)],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE.add(self.process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float | None:
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(
        self, http: aiohttp.ClientSession, paths: Sequence[str], within: float
    ) -> dict[str, object]:
        """Poll until every path answers 200; the last answer's JSON (if any) is returned."""
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise ChildFailed(self, f"exited with code {self.process.returncode}")
            try:
                body: dict[str, object] = {}
                for path in paths:
                    async with http.get(self.url + path) as response:
                        if response.status != 200:
                            raise ConnectionError(f"{path} answered {response.status}")
                        if response.content_type == "application/json":
                            body = await response.json()
                return body
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise ChildFailed(self, f"not ready after {within:.0f}s") from None
                await asyncio.sleep(0.1)

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM (a graceful stop), then SIGKILL after `grace` seconds."""
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _LIVE.discard(process)
        return process.returncode

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye (a crash, an OOM kill, a pulled plug)."""
        self.process.kill()
        self.process.wait()
        _LIVE.discard(self.process)


class BenchError(Exception):
    """The bench could not run (a server did not start, Redis is unreachable): exit 2."""


class ChildFailed(BenchError):
    def __init__(self, child: Child, why: str) -> None:
        tail = child.log_tail()
        super().__init__(
            f"{child.name} server {why} (log: {child.log_path})" + (f"\n{tail}" if tail else "")
        )


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_LIVE):
        if process.poll() is None:
            process.kill()
            process.wait()
        _LIVE.discard(process)
