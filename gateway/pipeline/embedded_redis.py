"""An in-process Redis for `frontdesk demo` (and the tests when no REDIS_URL is set).

fakeredis served over TCP: the gateway talks to it with the same redis-py client and the same
Lua scripts as to a real server. It does not block on XREADGROUP BLOCK, which the workers
tolerate by polling briefly. Not for production: it keeps nothing on disk.
"""

from __future__ import annotations

import random
import socket
import threading
from types import TracebackType

from fakeredis import TcpFakeServer


def free_port(consecutive: int = 1) -> int:
    """A port free on loopback (with the `consecutive - 1` ports after it free too).

    A run of ports is looked for below Linux's ephemeral range (32768 and up), where no
    outgoing connection can take one of them between this check and the bind.
    """
    if consecutive == 1:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port
    while True:
        port = random.randrange(20_000, 32_768 - consecutive)
        if all(_free(p) for p in range(port, port + consecutive)):
            return port


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class EmbeddedRedis:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server = TcpFakeServer(("127.0.0.1", self.port), server_type="redis")
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedded-redis", daemon=True
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
