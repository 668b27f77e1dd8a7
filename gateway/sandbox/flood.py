"""The messengers' send limits, as the Telegram and WhatsApp stand-ins enforce them when asked.

Neither vendor publishes its algorithm, only the figures, so the stand-ins model them this way:

* **Per bot / per business number: a sliding one-second window.** At most `limit` sends are
  accepted in any interval of one second, counted when the request arrives. This is the
  strictest reading of "not more than 30 messages per second" (Telegram Bot FAQ, "My bot is
  hitting limits, how do I avoid this?", core.telegram.org/bots/faq) and of "80 messages per
  second (mps) by default" (Meta, Cloud API "Throughput"; ../shared/contracts/
  chatwoot-whatsapp-telegram.md §2.9, §3.6): a fixed window would let twice the figure through
  across a second's edge, a token bucket a second's worth at once on top of the rate.
* **Per chat / per recipient: a token bucket.** Telegram: "avoid sending more than one message
  per second [to a chat]. We may allow short bursts that go over this limit, but eventually
  you'll begin receiving 429 errors" (same FAQ): one token a second, a short burst saved (the
  FAQ gives no number; the stand-in's default is 3). WhatsApp's pair rate: one message every
  6 seconds to the same user, bursts of up to 45 messages borrowed from later (Meta, Cloud API
  "Throughput", pair rate limits; error 131056).

What counts: Telegram's `send*` methods but `sendChatAction` (the FAQ speaks of messages
sent); WhatsApp's message sends, templates included (Meta's throughput also counts inbound
messages, which a stand-in driven by the bench does not have, and read receipts are left out).
A refused send counts for nothing (it was not delivered), so a sender that waits as told gets
through. The clock is injectable so that tests decide the time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable


class SlidingWindow:
    """At most `limit` accepted sends per key in any `window` seconds."""

    def __init__(
        self, limit: int, window: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a window takes at least one send and a positive length")
        self.limit = limit
        self.window = window
        self.clock = clock
        self._sends: dict[Hashable, deque[float]] = {}

    def due(self, key: Hashable) -> float:
        """Seconds until one more send would be accepted (0.0: now)."""
        now = self.clock()
        sends = self._sends.get(key)
        if sends is None:
            return 0.0
        while sends and sends[0] <= now - self.window:
            sends.popleft()
        if not sends:
            del self._sends[key]
            return 0.0
        return sends[0] + self.window - now if len(sends) >= self.limit else 0.0

    def take(self, key: Hashable) -> None:
        """Count a send accepted now (after `due` said 0.0)."""
        self._sends.setdefault(key, deque()).append(self.clock())


class Bucket:
    """Per key, `rate` sends a second on average with up to `burst` at once (then refused)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket takes a positive rate and a burst of at least one")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._tokens: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, when)

    def _level(self, key: Hashable, now: float) -> float:
        tokens, stamp = self._tokens.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def due(self, key: Hashable) -> float:
        """Seconds until a token is there (0.0: now)."""
        tokens = self._level(key, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: Hashable) -> None:
        """Take a token now (after `due` said 0.0)."""
        now = self.clock()
        if len(self._tokens) > 100_000:
            # A full bucket is what an unknown key gets: forget those rather than grow.
            self._tokens = {
                k: v for k, v in self._tokens.items() if self._level(k, now) < self.burst
            }
        self._tokens[key] = (self._level(key, now) - 1.0, now)


class Limits:
    """A sender's limit (one window for the whole bot or number) and its per-chat one: a send
    is accepted only when both have room, and then counts against both."""

    def __init__(self, sender: SlidingWindow, chat: Bucket) -> None:
        self.sender = sender
        self.chat = chat
        self.refused = 0

    def wait(self, chat: Hashable) -> tuple[str, float]:
        """("", 0.0) and the send is counted, else which limit refused it and for how long."""
        # The sender's limit is told first: it is what a broadcast runs into.
        for which, wait in (("sender", self.sender.due(None)), ("chat", self.chat.due(chat))):
            if wait > 0:
                self.refused += 1
                return which, wait
        self.sender.take(None)
        self.chat.take(chat)
        return "", 0.0


def whole_seconds(wait: float) -> int:
    """A wait as the vendors state it: whole seconds, never 0 for a send that was refused."""
    return max(1, math.ceil(wait))
