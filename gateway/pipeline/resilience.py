"""A circuit breaker per external service, and a token bucket for rate limits.

Not aiobreaker (DESIGN §4): unmaintained since 2021, mixes UTC and local time, warns on 3.12+,
and lets every concurrent call through when half-open. This one uses a monotonic clock, lets
exactly one trial call through when half-open, and counts only what `is_failure` says is the
service's fault (timeouts and 5xx, not 4xx).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Protocol, TypeVar

T = TypeVar("T")


class State(IntEnum):
    # The values are what `/metrics` shows.
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class BreakerOpen(Exception):
    def __init__(self, name: str, retry_in: float) -> None:
        super().__init__(f"{name} circuit is open; next trial in {retry_in:.1f}s")
        self.name = name
        self.retry_in = retry_in


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        is_failure: Callable[[BaseException], bool] = lambda exc: True,
        on_change: Callable[[str, State], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self._is_failure = is_failure
        self._on_change = on_change
        self._clock = clock
        self._state = State.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            return State.HALF_OPEN
        return self._state

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        trial = self._enter()
        try:
            result = await fn()
        except asyncio.CancelledError:
            if trial:
                self._trial_running = False
            raise
        except BaseException as exc:
            if self._is_failure(exc):
                self._failed(trial)
            elif trial:
                # The service answered (say, a 4xx): it is up.
                self._succeeded()
            raise
        self._succeeded()
        return result

    def _enter(self) -> bool:
        state = self.state
        if state is State.CLOSED:
            return False
        if state is State.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            self._set(State.HALF_OPEN)
            return True
        retry_in = max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        raise BreakerOpen(self.name, retry_in)

    def _failed(self, trial: bool) -> None:
        self._trial_running = False
        self._failures += 1
        if trial or self._failures >= self.fail_max:
            self._opened_at = self._clock()
            self._set(State.OPEN)

    def _succeeded(self) -> None:
        self._trial_running = False
        self._failures = 0
        self._set(State.CLOSED)

    def _set(self, state: State) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(self.name, state)


# Makes a service's breaker from its name and what counts as its failure: the composition
# root's are set from the settings and reported in /readyz and the metrics, a command's are its
# own. The integrations' factories take one, so each client gets the breaker its caller wants.
BreakerFor = Callable[[str, Callable[[BaseException], bool]], CircuitBreaker]


def command_breaker(name: str, is_failure: Callable[[BaseException], bool]) -> CircuitBreaker:
    """A `BreakerFor` of the operator's commands: a breaker of their own, reported nowhere."""
    return CircuitBreaker(name, is_failure=is_failure)


class TokenBucket:
    """`rate` tokens per second, up to `burst` saved; `take` waits for one."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def delay(self) -> float:
        """Take a token now if one is there (0.0), else say how long until one is."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    async def take(self) -> None:
        while (wait := self.delay()) > 0:  # noqa: ASYNC110 - waiting for time, not an event
            await asyncio.sleep(wait)

    def done(self) -> None:
        """A bucket's tokens are spent when taken."""

    def pause(self, seconds: float) -> None:
        """Nothing for `seconds` from now (the service asked us to wait)."""
        self.delay()  # brings the tokens up to now
        self._tokens = min(self._tokens, 1.0 - seconds * self.rate)

    def paused(self) -> bool:
        """Told to wait and still waiting."""
        now = self._clock()
        return self._tokens + (now - self._stamp) * self.rate < 0.0

    def busy(self) -> bool:
        """Half its burst or more spent."""
        now = self._clock()
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        return tokens * 2 <= self.burst


class Cadence:
    """One chat's pace: `rate` messages a second on average, up to `burst` in a row, counted
    the way the platform may count them.

    The platform's per-chat limit is a token bucket (gateway/sandbox/flood.py) that counts a
    message when it arrives, somewhere between our send and its answer. This is the same bucket
    in its "theoretical arrival time" form, with each message taken as arriving when its answer
    came back (`done`), the latest it can have: the platform saw every earlier message no later
    than that, so the next one, sent when this bucket allows, finds a token there too, whatever
    the latency. A chat sends one message at a time, so one `done` follows each `take`.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (max(1, burst) - 1) * self.interval
        self._clock = clock
        self._sleep = sleep
        self._tat = float("-inf")  # when the bucket would be full again

    def delay(self) -> float:
        """Seconds until the next message may go."""
        return max(0.0, self._tat - self.tolerance - self._clock())

    async def take(self) -> None:
        while (wait := self.delay()) > 0:
            await self._sleep(wait)

    def rested(self) -> bool:
        """Back to its full burst: forgetting it changes nothing."""
        return self._tat <= self._clock()

    def done(self) -> None:
        """The message was answered (or did not go: counting it is only cautious)."""
        self._tat = max(self._clock(), self._tat) + self.interval


class Gate(Protocol):
    """What paces one sender (a bot, a business number, a service) as a whole: `take` before a
    send, `done` after it, `pause` when the service asked the whole sender to wait (`paused`
    until then), `busy`: the sender is sending near its limit (half of it or more taken)."""

    async def take(self) -> None: ...

    def done(self) -> None: ...

    def pause(self, seconds: float) -> None: ...

    def paused(self) -> bool: ...

    def busy(self) -> bool: ...


class SendWindow:
    """At most `limit` sends in any second as the platform counts them, in the order asked.

    Platforms count a sender's messages in a window of a second (gateway/sandbox/flood.py
    models the strictest reading, a sliding one) when they arrive, which is somewhere between
    the moment we send and the moment the answer is back. So a send holds its place in the
    window from its start until a second after its answer (`done`): at most `count` sends are
    in flight or answered less than `window` ago. Then no second of arrivals can hold more
    than `count`, whatever the latency and its jitter (the last one to start found the others
    in flight or answered after that second began), and a broadcast still goes at
    `count / (window + latency)`: 99 % of the limit with a few milliseconds of latency.

    Unlike a token bucket it never lets more than `count` through in a second (a full bucket
    lets a second's worth go on top of its rate), and a late wake-up (a loaded machine, a coarse
    timer) costs no rate: what was late is made up within the window. Once half the window is
    taken, sends are never closer than 80 % of the even interval, so a broadcast's sends are
    spread, not fired at once. Waiters
    queue on a lock: first come, first served, one wake-up per send however many chats wait.
    """

    def __init__(
        self,
        limit: float,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.count = max(1, int(limit * window))
        # Under one send per window (a limit below 1/s): one send per 1/limit seconds.
        self.window = max(window, self.count / limit)
        self.min_gap = 0.8 * self.window / self.count
        self._clock = clock
        self._sleep = sleep
        self._answered: deque[float] = deque()
        self._in_flight = 0
        self._last_start = float("-inf")
        self._paused_until = float("-inf")
        self._freed = asyncio.Event()
        self._lock = asyncio.Lock()

    def _held(self, now: float) -> int:
        """Places taken: sends in flight and those answered less than a window ago."""
        while self._answered and self._answered[0] <= now - self.window:
            self._answered.popleft()
        return self._in_flight + len(self._answered)

    def _wait(self) -> float | None:
        """Seconds until the next send may start; None: when a send in flight is answered."""
        now = self._clock()
        held = self._held(now)
        wait = self._paused_until - now
        if held * 2 >= self.count:
            # Spread only a busy window's sends: a few in a row (a reply's, a booking's
            # notices) go at once, as they always did.
            wait = max(wait, self._last_start + self.min_gap - now)
        if held >= self.count:
            if not self._answered:
                return None
            wait = max(wait, self._answered[0] + self.window - now)
        return wait

    async def take(self) -> None:
        """Wait for a place in the window; `done` must follow once the send is over."""
        async with self._lock:
            while (wait := self._wait()) is None or wait > 0:
                if wait is None:
                    self._freed.clear()
                    await self._freed.wait()
                else:
                    await self._sleep(wait)
            self._in_flight += 1
            self._last_start = self._clock()

    def done(self) -> None:
        """The send that took a place was answered (or failed, or never went)."""
        self._in_flight -= 1
        self._answered.append(self._clock())
        self._freed.set()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused(self) -> bool:
        return self._paused_until > self._clock()

    def busy(self) -> bool:
        """At least half the window taken (the send just answered counts): the sender is near
        its limit, so a refusal that does not say whose limit it was is likely the sender's."""
        return self._held(self._clock()) * 2 >= self.count
