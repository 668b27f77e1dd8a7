"""What a run of `bench ingest` measured: its options and results, shared by run and report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.load import ClosedLoop, OpenLoop
from bench.procs import Placement
from bench.replies import Tally


@dataclass(frozen=True)
class Options:
    duration: float = 10.0
    warmup: float = 2.0
    connections: int = 50
    rounds: int = 1
    chats: int = 1000
    rate: float = 200.0
    e2e_duration: float = 10.0
    redis_url: str | None = None  # None: the bench's own redis-server (else 6379/14)
    drain_timeout: float = 60.0
    workers: bool = True  # False: --no-workers, the webhook edge alone
    in_process_workers: bool = False  # True: one process takes webhooks and handles them
    profile: bool = False
    sandbox_spec: Path | None = None
    keep_logs: bool = False
    strict: bool = False
    client: str = "aiohttp"  # the closed loop's load generator: "wrk" or "aiohttp"
    # wrk and the bench's own Redis at SCHED_FIFO, ahead of the worker on the shared core.
    priority: bool = True

    @property
    def split(self) -> bool:
        """The default layout: an edge process (RUN_WORKERS off) takes the webhooks and a
        separate worker process (RUN_WORKERS on) handles them and sends the replies."""
        return self.workers and not self.in_process_workers

    @property
    def layout(self) -> str:
        if not self.workers:
            return "edge only"
        return "in-process workers" if self.in_process_workers else "edge + worker"


@dataclass
class Phase:
    """One closed-loop phase against one server."""

    server: str
    round: int
    load: ClosedLoop
    cpu: dict[str, float]  # CPU seconds per party inside the measured window
    tally: Tally | None = None  # gateway phases with workers: the replies
    replies_in_window: int = 0
    replies_after_start: int = 0  # replies from the window's start on, drain included
    # CPU seconds of the process that handles the updates (the worker; in-process: the gateway
    # itself) from the window's start until every reply was in: its cost per handled update.
    handler_cpu: float | None = None

    def busy(self, party: str) -> float | None:
        """Share of one core a party used during the window."""
        seconds = self.cpu.get(party)
        return None if seconds is None else seconds / self.load.duration

    @property
    def server_us_per_request(self) -> float | None:
        seconds = self.cpu.get("server")
        answered = self.load.answered
        return None if seconds is None or not answered else seconds / answered * 1e6

    @property
    def handler_us_per_update(self) -> float | None:
        """CPU of the handling process per reply it delivered, window start to drained."""
        if self.handler_cpu is None or not self.replies_after_start:
            return None
        return self.handler_cpu / self.replies_after_start * 1e6

    @property
    def drain_seconds(self) -> float | None:
        """From the end of the load to the last reply: the backlog the workers had left."""
        if self.tally is None or self.tally.lost or self.tally.last_reply_at is None:
            return None
        return max(0.0, self.tally.last_reply_at - self.load.window_end)


@dataclass
class EndToEnd:
    load: OpenLoop
    latencies: list[float]  # scheduled send -> reply recorded by the sandbox
    tally: Tally


@dataclass
class Outcome:
    placement: Placement
    phases: list[Phase] = field(default_factory=list)
    e2e: EndToEnd | None = None
    dead_letters: int = 0
    sandbox_errors: int = 0
    sandbox_error_samples: list[list[object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # gateway log lines
    profile: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    redis: str = ""  # where Redis runs
    client_prioritized: bool = False  # wrk ran at SCHED_FIFO

    def of(self, server: str) -> list[Phase]:
        return [p for p in self.phases if p.server == server]
