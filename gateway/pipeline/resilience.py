"""A circuit breaker per external service, and a token bucket for rate limits.

Not aiobreaker (DESIGN §4): unmaintained since 2021, mixes UTC and local time, warns on 3.12+,
and lets every concurrent call through when half-open. This one uses a monotonic clock, lets
exactly one trial call through when half-open, and counts only what `is_failure` says is the
service's fault (timeouts and 5xx, not 4xx).
"""

from __future__ import annotations

import asyncio
import time
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

    def pause(self, seconds: float) -> None:
        """Nothing for `seconds` from now (the service asked us to wait)."""
        self.delay()  # brings the tokens up to now
        self._tokens = min(self._tokens, 1.0 - seconds * self.rate)


class Gate(Protocol):
    """What paces one sender (a bot, a business number, a service) as a whole."""

    async def take(self) -> None: ...

    def pause(self, seconds: float) -> None: ...


# How late a send may be before the schedule lets it go: lateness up to this is made up, so
# that a timer's overshoot does not cost rate; beyond it, it is not (a stalled loop must not
# be followed by a burst).
SPACING_SLACK = 0.005


class Spacing:
    """At most `rate` sends a second, evenly spaced, in the order they asked; nothing saved up.

    A token bucket lets `burst` sends go at once on top of its rate, which a platform that counts
    sends in a sliding one-second window (gateway/sandbox/flood.py) answers with 429s; and all
    of a bucket's waiters wake on each token, which with a thousand chats waiting costs more CPU
    than the sends. Here the waiters queue on a lock (FIFO, one wake-up per send) and each send
    is due one interval after the one before it, so that any n + 1 sends are at least
    n / rate - SPACING_SLACK seconds apart from first to last.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._due = float("-inf")
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._due > now:
                await self._sleep(self._due - now)
                late = self._clock() - self._due
                # The next is due one interval after this one was: a little lateness is made
                # up, a stall is not (then the next counts from now).
                now = self._due if late <= SPACING_SLACK else self._due + late
            self._due = now + self.interval

    def pause(self, seconds: float) -> None:
        self._due = max(self._due, self._clock() + seconds)
