"""The circuit breaker and the token bucket, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from gateway.pipeline.resilience import (
    SPACING_SLACK,
    BreakerOpen,
    CircuitBreaker,
    Spacing,
    State,
    TokenBucket,
)
from tests.support.clock import Clock


class Down(Exception):
    """The service failed (a timeout, a 5xx)."""


class Rejected(Exception):
    """The service answered but refused the request (a 4xx): it is up."""


class Service:
    """A fake external service: counts calls, fails while `down`, can hold a call in flight."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False
        self.hold: asyncio.Event | None = None
        self.in_flight = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        self.in_flight.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.down:
            raise Down("503")
        return "ok"


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def changes() -> list[tuple[str, State]]:
    return []


@pytest.fixture
def breaker(clock: Clock, changes: list[tuple[str, State]]) -> CircuitBreaker:
    return CircuitBreaker(
        "calcom",
        fail_max=3,
        reset_timeout=30.0,
        is_failure=lambda exc: not isinstance(exc, Rejected),
        on_change=lambda name, state: changes.append((name, state)),
        clock=clock,
    )


async def trip(breaker: CircuitBreaker, service: Service) -> None:
    service.down = True
    for _ in range(breaker.fail_max):
        with pytest.raises(Down):
            await breaker.call(service)
    service.down = False


async def test_opens_after_fail_max_failures_and_then_rejects_without_calling(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    service = Service()
    service.down = True
    for _ in range(2):
        with pytest.raises(Down):
            await breaker.call(service)
    assert breaker.state is State.CLOSED
    with pytest.raises(Down):
        await breaker.call(service)
    assert breaker.state is State.OPEN
    assert service.calls == 3

    clock.advance(10)
    with pytest.raises(BreakerOpen) as rejected:
        await breaker.call(service)
    assert service.calls == 3
    assert rejected.value.name == "calcom"
    assert rejected.value.retry_in == pytest.approx(20.0)
    assert "calcom" in str(rejected.value)


async def test_a_success_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    service = Service()
    for _ in range(3):
        service.down = True
        for _ in range(2):
            with pytest.raises(Down):
                await breaker.call(service)
        service.down = False
        assert await breaker.call(service) == "ok"
    assert breaker.state is State.CLOSED


async def test_still_open_just_before_the_reset_timeout(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    service = Service()
    await trip(breaker, service)
    clock.advance(29.9)
    assert breaker.state is State.OPEN
    with pytest.raises(BreakerOpen):
        await breaker.call(service)
    assert service.calls == 3


async def test_after_the_reset_timeout_exactly_one_trial_goes_through(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    service = Service()
    await trip(breaker, service)
    clock.advance(30)
    assert breaker.state is State.HALF_OPEN

    service.hold = asyncio.Event()
    service.in_flight.clear()
    trial = asyncio.create_task(breaker.call(service))
    await service.in_flight.wait()
    for _ in range(3):
        with pytest.raises(BreakerOpen):
            await breaker.call(service)
    assert service.calls == 4  # three that tripped it, one trial

    service.hold.set()
    assert await trial == "ok"
    assert breaker.state is State.CLOSED
    service.hold = None
    assert await breaker.call(service) == "ok"
    assert service.calls == 5


async def test_a_failed_trial_opens_again_for_a_full_timeout(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    service = Service()
    await trip(breaker, service)
    clock.advance(45)
    service.down = True
    with pytest.raises(Down):
        await breaker.call(service)
    assert breaker.state is State.OPEN
    with pytest.raises(BreakerOpen) as rejected:
        await breaker.call(service)
    assert rejected.value.retry_in == pytest.approx(30.0)
    assert service.calls == 4

    clock.advance(30)
    service.down = False
    assert await breaker.call(service) == "ok"
    assert breaker.state is State.CLOSED


async def test_errors_that_are_not_the_services_fault_do_not_count(
    breaker: CircuitBreaker,
) -> None:
    calls = 0

    async def refuse() -> None:
        nonlocal calls
        calls += 1
        raise Rejected("422")

    for _ in range(10):
        with pytest.raises(Rejected):
            await breaker.call(refuse)
    assert breaker.state is State.CLOSED
    assert calls == 10


async def test_a_refused_trial_proves_the_service_is_up(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    await trip(breaker, Service())
    clock.advance(30)

    async def refuse() -> None:
        raise Rejected("404")

    with pytest.raises(Rejected):
        await breaker.call(refuse)
    assert breaker.state is State.CLOSED


async def test_on_change_sees_every_transition_in_order(
    breaker: CircuitBreaker, clock: Clock, changes: list[tuple[str, State]]
) -> None:
    service = Service()
    assert await breaker.call(service) == "ok"
    assert changes == []
    await trip(breaker, service)
    clock.advance(30)
    service.down = True
    with pytest.raises(Down):
        await breaker.call(service)
    clock.advance(30)
    service.down = False
    await breaker.call(service)
    await breaker.call(service)
    assert changes == [
        ("calcom", State.OPEN),
        ("calcom", State.HALF_OPEN),
        ("calcom", State.OPEN),
        ("calcom", State.HALF_OPEN),
        ("calcom", State.CLOSED),
    ]


async def test_a_cancelled_trial_does_not_leave_the_breaker_stuck(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    service = Service()
    await trip(breaker, service)
    clock.advance(30)
    service.hold = asyncio.Event()
    service.in_flight.clear()
    trial = asyncio.create_task(breaker.call(service))
    await service.in_flight.wait()
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial

    service.hold = None
    assert await breaker.call(service) == "ok"
    assert breaker.state is State.CLOSED


def test_state_values_are_what_metrics_show() -> None:
    assert [int(s) for s in (State.CLOSED, State.HALF_OPEN, State.OPEN)] == [0, 1, 2]


# Token bucket


def test_a_bucket_allows_a_burst_then_spaces_tokens(clock: Clock) -> None:
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.delay() == pytest.approx(0.5)
    assert bucket.delay() == pytest.approx(0.5)  # asking does not take
    clock.advance(0.25)
    assert bucket.delay() == pytest.approx(0.25)
    clock.advance(0.25)
    assert bucket.delay() == 0.0
    assert bucket.delay() == pytest.approx(0.5)


def test_a_bucket_saves_at_most_its_burst(clock: Clock) -> None:
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    clock.advance(3600)
    assert [bucket.delay() for _ in range(2)] == [0.0, 0.0]
    assert bucket.delay() == pytest.approx(1.0)


async def test_take_waits_for_a_token() -> None:
    bucket = TokenBucket(rate=20.0, burst=2)
    started = time.monotonic()
    await bucket.take()
    await bucket.take()
    assert time.monotonic() - started < 0.04
    await asyncio.wait_for(bucket.take(), timeout=2)
    assert time.monotonic() - started >= 0.045


def test_a_paused_bucket_gives_nothing_until_the_pause_is_over(clock: Clock) -> None:
    bucket = TokenBucket(rate=10.0, burst=5, clock=clock)
    bucket.pause(2.0)
    assert bucket.delay() == pytest.approx(2.0)
    clock.advance(2.0)
    assert bucket.delay() == 0.0


# Spacing: a sender's gate


class Sleeper:
    """asyncio.sleep on a fake clock: records each wait and moves the clock by it (plus a
    lateness, as a busy loop or a coarse timer would add)."""

    def __init__(self, clock: Clock, late: float = 0.0) -> None:
        self.clock = clock
        self.late = late
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds + self.late)


async def test_spacing_sends_evenly_from_the_first_without_a_burst(clock: Clock) -> None:
    sleep = Sleeper(clock)
    gate = Spacing(10.0, clock=clock, sleep=sleep)
    stamps = []
    for _ in range(5):
        await gate.take()
        stamps.append(clock())
    assert [round(b - a, 6) for a, b in itertools.pairwise(stamps)] == [0.1] * 4
    assert len(sleep.waits) == 4  # the first went at once, none after it did


async def test_spacing_makes_up_a_timer_overshoot_but_never_a_stall(clock: Clock) -> None:
    sleep = Sleeper(clock, late=0.002)  # within SPACING_SLACK: the schedule holds
    gate = Spacing(10.0, clock=clock, sleep=sleep)
    start = clock()
    for _ in range(11):
        await gate.take()
    assert clock() - start == pytest.approx(1.0 + 0.002, abs=1e-6)
    clock.advance(0.5)  # a stalled loop: what was due meanwhile does not go at once
    before = clock()
    await gate.take()
    await gate.take()
    assert clock() - before >= 0.1 - SPACING_SLACK


async def test_spacing_keeps_any_window_within_the_rate_whoever_asks() -> None:
    gate = Spacing(200.0)
    stamps: list[float] = []
    order: list[int] = []

    async def send(n: int) -> None:
        await gate.take()
        stamps.append(time.monotonic())
        order.append(n)

    await asyncio.gather(*(send(n) for n in range(41)))
    assert order == list(range(41))  # in the order they asked
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert stamps[-1] - stamps[0] >= 40 / 200 - SPACING_SLACK
    assert min(gaps) >= 0.0


async def test_a_paused_spacing_lets_nothing_through_until_then(clock: Clock) -> None:
    sleep = Sleeper(clock)
    gate = Spacing(100.0, clock=clock, sleep=sleep)
    await gate.take()
    gate.pause(1.5)
    before = clock()
    await gate.take()
    assert clock() - before == pytest.approx(1.5)
