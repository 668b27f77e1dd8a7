"""A real 3-node Redis Cluster on loopback, from this machine's `redis-server` and `redis-cli`.

Each node is a primary (`--cluster-replicas 0`) with its own directory. Nodes append every write
to their AOF and fsync it before answering (`appendfsync always`): the suite restarts a node
with SIGKILL and nothing it acknowledged may be lost (the gateway promises as much, and an
operator who wants that promise runs Redis so). `cluster-require-full-coverage no` lets the
other nodes keep answering for their slots while one is down.

`python -m tests.support.redis_cluster start|stop DIR` runs it by hand.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Loopback ports the cluster may take (three consecutive ones, cluster bus at +10000).
FIRST_PORT = 7101
LAST_PORT = 7199
NODES = 3


def tools_missing() -> str | None:
    """Why no cluster can be started here, or None if it can."""
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not installed" if missing else None


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports() -> list[int]:
    for first in range(FIRST_PORT, LAST_PORT - NODES + 2):
        ports = list(range(first, first + NODES))
        if all(_port_free(p) and _port_free(p + 10000) for p in ports):
            return ports
    raise RuntimeError(f"no {NODES} free ports in {FIRST_PORT}-{LAST_PORT}")


@dataclass
class RedisCluster:
    root: Path
    ports: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 30.0) -> RedisCluster:
        self.ports = free_ports()
        for port in self.ports:
            self.start_node(port)
        for port in self.ports:
            self._wait_answering(port, timeout)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        self.wait_ok(timeout)
        return self

    def start_node(self, port: int) -> None:
        """Start (or restart, with its data and cluster config) the node on `port`."""
        home = self.root / str(port)
        home.mkdir(parents=True, exist_ok=True)
        log = (home / "redis.log").open("ab")
        self.processes[port] = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(home),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-require-full-coverage",
                "no",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill_node(self, port: int) -> None:
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def restart_node(self, port: int, timeout: float = 30.0) -> None:
        self.start_node(port)
        self._wait_answering(port, timeout)
        self.wait_ok(timeout)

    def wait_ok(self, timeout: float) -> None:
        """Until every node says the cluster is ok (all slots served, the config agreed)."""
        deadline = time.monotonic() + timeout
        while True:
            states = [self._cli(port, "cluster", "info") for port in self.ports]
            if all("cluster_state:ok" in state for state in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ok after {timeout}s: {states}")
            time.sleep(0.1)

    def node_of(self, key: str) -> int:
        """The port of the node that serves `key`'s slot."""
        slot = int(self._cli(self.ports[0], "cluster", "keyslot", key))
        for port in self.ports:
            if slot in self._slots(port):
                return port
        raise LookupError(f"no node serves slot {slot}")

    def _slots(self, port: int) -> set[int]:
        myself = next(
            line
            for line in self._cli(port, "cluster", "nodes").splitlines()
            if "myself" in line.split()[2]
        )
        slots: set[int] = set()
        for part in myself.split()[8:]:
            if part.startswith("["):
                continue  # a slot being migrated
            low, _, high = part.partition("-")
            slots.update(range(int(low), int(high or low) + 1))
        return slots

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)
        self.processes.clear()

    def _cli(self, port: int, *command: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *command],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip()

    def _wait_answering(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._cli(port, "ping") != "PONG":
            if self.processes[port].poll() is not None:
                raise RuntimeError(f"redis-server on {port} exited: see {self.root / str(port)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {port} not answering")
            time.sleep(0.05)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.support.redis_cluster start|stop DIR", file=sys.stderr)
        return 2
    root = Path(argv[1])
    if argv[0] == "start":
        cluster = RedisCluster(root).start()
        (root / "pids").write_text(" ".join(str(p.pid) for p in cluster.processes.values()))
        print(cluster.url)
        return 0
    for pid in (root / "pids").read_text().split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
