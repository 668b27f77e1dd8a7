"""`frontdesk serve` for process-level tests, optionally with slow handling.

With FRONTDESK_TEST_SLOW_SECONDS set, every Telegram update takes that long to handle, and
FRONTDESK_TEST_MARKER (a path) is created when handling starts: the test then knows the process
is mid-handling and can kill it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from gateway.cli import main
from gateway.pipeline.streams import Entry, Outcome
from handlers.telegram import TelegramConversations


def slow_down(seconds: float, marker: Path) -> None:
    handle = TelegramConversations.__call__

    async def slow(self: TelegramConversations, entry: Entry) -> Outcome:
        marker.write_text(entry.event_id)
        await asyncio.sleep(seconds)
        return await handle(self, entry)

    TelegramConversations.__call__ = slow  # type: ignore[method-assign]


if __name__ == "__main__":
    if "FRONTDESK_TEST_SLOW_SECONDS" in os.environ:
        slow_down(
            float(os.environ["FRONTDESK_TEST_SLOW_SECONDS"]),
            Path(os.environ["FRONTDESK_TEST_MARKER"]),
        )
    sys.exit(main(sys.argv[1:]))
