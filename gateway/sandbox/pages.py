"""What every stand-in's page and server share: the page's answer and serving without logs."""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

# The pages run their own inline script and talk to their own server only.
PAGE_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)


# Where a page wants the polling every page shares: the pages may run inline scripts only.
POLL_MARK = "/* one_poll.js */"


@functools.cache
def _one_poll() -> str:
    return (Path(__file__).parent / "static" / "one_poll.js").read_text(encoding="utf-8")


def page(html: str, *, frames: tuple[str, ...] = ()) -> web.Response:
    """A stand-in's HTML page; `frames`: other pages it may show beside itself."""
    if POLL_MARK in html:
        html = html.replace(POLL_MARK, _one_poll())
    policy = PAGE_CSP + (f"; frame-src {' '.join(frames)}" if frames else "")
    return web.Response(
        text=html,
        content_type="text/html",
        headers={"Content-Security-Policy": policy, "Cache-Control": "no-store"},
    )


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` without an access log (requests carry keys); `runner.addresses` has the
    bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
