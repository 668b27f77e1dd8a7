"""The closed loop with wrk, as the baselines were measured (docs: dependencies-and-baselines §4:
`wrk -t1 -c50 --timeout 5s`, a Lua script making every update unique).

A Python load generator spends ~80 µs per request: at 10k+ req/s it saturates its core before
the servers do, and on a 2-CPU machine the worker shares that core, so it measured the client,
not the servers. wrk (C, LuaJIT) costs a fraction of that. The Lua script below builds the same
bodies as `bench.payloads.Updates` (same template, chats round-robin, one `/start` then the mix),
continuing one serial across the warm-up and the measured run.

wrk reports totals, not which request got which answer, and drops the answers still in flight
when its time is up. So what the gateway acknowledged is read from the gateway itself: an
update is taken (answered 200, or would have been) exactly when its dedup key exists; every
such update must get its reply (`bench.ingest`).
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.load import ClosedLoop
from bench.payloads import SECRET, SECRET_HEADER
from bench.procs import first_in_line

MARK = "FRONTDESK-WRK "
TIMEOUT = "5s"

_SCRIPT = r"""
-- Unique Telegram updates for the Frontdesk bench (bench/wrk.py); one thread (-t1).
local first_chat, chats, first_update, date
local template = '{"update_id":%d,"message":{"message_id":%d,'
  .. '"from":{"id":%d,"is_bot":false,"first_name":"Anna","last_name":"Ivanova",'
  .. '"username":"anna_iv","language_code":"en"},'
  .. '"chat":{"id":%d,"first_name":"Anna","last_name":"Ivanova","username":"anna_iv",'
  .. '"type":"private"},"date":%d,"text":%s%s}}'
local texts = {
  '"/start"',
  '"Hi! Do you have a free slot for a haircut tomorrow at five?"',
  '"How much is a gel manicure, and how long does it take?"',
}
local entities = { ',"entities":[{"offset":0,"length":6,"type":"bot_command"}]', "", "" }
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  first_chat = tonumber(args[1])
  chats = tonumber(args[2])
  first_update = tonumber(args[3])
  serial = tonumber(args[4])
  date = tonumber(args[5])
  generated = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers[args[6]] = args[7]
end

function request()
  local s = serial
  serial = serial + 1
  generated = generated + 1
  local chat = first_chat + s % chats
  local rounds = math.floor(s / chats)
  local k = rounds % 3 + 1
  local body = string.format(template, first_update + s, rounds + 1, chat, chat, date,
    texts[k], entities[k])
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local generated = 0
  for _, thread in ipairs(threads) do
    generated = generated + thread:get("generated")
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"status_errors":%d,"timeouts":%d,"socket_errors":%d,'
      .. '"generated":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    "FRONTDESK-WRK ", summary.requests, summary.duration, e.status, e.timeout,
    e.connect + e.read + e.write, generated, latency:percentile(50), latency:percentile(99),
    latency.max))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


@dataclass
class Run:
    """One wrk run: its counts, latency percentiles (seconds) and its own CPU seconds."""

    requests: int
    duration: float
    status_errors: int
    timeouts: int
    socket_errors: int
    generated: int
    p50: float
    p99: float
    cpu: float
    prioritized: bool  # ran at SCHED_FIFO (bench.procs.first_in_line)


@dataclass(frozen=True)
class Stream:
    """The updates of one closed-loop phase: serial s goes to chat first_chat + s % chats with
    update_id first_update_id + s (as `Updates` numbers them)."""

    first_chat: int
    chats: int
    first_update_id: int
    date: int

    def chat(self, serial: int) -> int:
        return self.first_chat + serial % self.chats

    def update_id(self, serial: int) -> int:
        return self.first_update_id + serial


async def run(
    url: str, stream: Stream, serial: int, connections: int, seconds: float, prioritize: bool
) -> Run:
    """Run wrk for `seconds` (rounded up to whole seconds) starting at update `serial`; wrk's
    CPU is taken from its rusage. `prioritize`: at SCHED_FIFO, where allowed."""
    with tempfile.TemporaryDirectory(prefix="frontdesk-wrk-") as folder:
        script = Path(folder) / "updates.lua"
        script.write_text(_SCRIPT, encoding="utf-8")
        argv = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{math.ceil(seconds)}s",  # wrk takes whole seconds
            "--timeout",
            TIMEOUT,
            "-s",
            str(script),
            url,
            "--",
            str(stream.first_chat),
            str(stream.chats),
            str(stream.first_update_id),
            str(serial),
            str(stream.date),
            SECRET_HEADER,
            SECRET,
        ]
        code, output, cpu, prioritized = await asyncio.to_thread(_run, argv, prioritize)
    if code != 0:
        raise RuntimeError(f"wrk failed ({code}): {output[-500:]}")
    line = next((ln for ln in output.splitlines() if ln.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {output[-500:]}")
    found = json.loads(line[len(MARK) :])
    return Run(
        requests=found["requests"],
        duration=found["duration_us"] / 1e6,
        status_errors=found["status_errors"],
        timeouts=found["timeouts"],
        socket_errors=found["socket_errors"],
        generated=found["generated"],
        p50=found["p50_us"] / 1e6,
        p99=found["p99_us"] / 1e6,
        cpu=cpu,
        prioritized=prioritized,
    )


def _run(argv: list[str], prioritize: bool) -> tuple[int, str, float, bool]:
    """Run wrk to its end: exit code, output, its CPU seconds (the bench's other children,
    the servers, are not reaped meanwhile, so the children's rusage grows by wrk's alone) and
    whether it ran at SCHED_FIFO."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        # Right after the start: wrk loads its Lua script before it connects, so the load
        # runs at SCHED_FIFO from its first request.
        prioritized = prioritize and first_in_line(process.pid)
        output, _ = process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return process.returncode, output, cpu, prioritized


def closed_loop(measured: Run, window: tuple[float, float]) -> ClosedLoop:
    """The measured run as the Python loop reports a phase (answers, statuses, percentiles)."""
    result = ClosedLoop(*window)
    result.client = "wrk"
    result.answered_count = measured.requests
    result.quantiles = {50: measured.p50, 99: measured.p99}
    result.client_cpu = measured.cpu
    result.statuses = Counter(
        {
            200: measured.requests - measured.status_errors,
            500: measured.status_errors,  # wrk counts non-2xx/3xx answers, not their codes
            0: measured.timeouts + measured.socket_errors,
        }
    )
    return result
