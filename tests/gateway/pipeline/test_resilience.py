"""The circuit breaker and the token bucket, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest

from gateway.pipeline.resilience import (
    BreakerOpen,
    Cadence,
    CircuitBreaker,
    SendWindow,
    State,
    TokenBucket,
)
from gateway.sandbox.flood import Bucket
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


# SendWindow: a sender's gate


class Sleeper:
    """asyncio.sleep on a fake clock: records each wait and moves the clock by it (plus a
    lateness, as a loaded machine or a coarse timer would add)."""

    def __init__(self, clock: Clock, late: float = 0.0) -> None:
        self.clock = clock
        self.late = late
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds + self.late)


def most_in(stamps: list[float], window: float) -> int:
    return max(sum(1 for t in stamps if s <= t < s + window) for s in stamps)


async def sends(
    gate: SendWindow, clock: Clock, count: int, latency: float = 0.0
) -> list[tuple[float, float]]:
    """(sent, answered) of `count` sends one after another, each answered after `latency`."""
    stamps = []
    for _ in range(count):
        await gate.take()
        sent = clock()
        clock.advance(latency)
        gate.done()
        stamps.append((sent, clock()))
    return stamps


async def test_a_send_window_lets_the_limit_through_in_any_second_and_no_more(
    clock: Clock,
) -> None:
    gate = SendWindow(30.0, clock=clock, sleep=Sleeper(clock))
    sent = [s for s, _ in await sends(gate, clock, 300)]
    assert most_in(sent, 1.0) == 30
    # The limit itself (measured over whole windows: a window's sends are spread over 80 % of
    # it, the rest of it waits).
    assert 270 / (sent[270] - sent[0]) == pytest.approx(30.0, rel=0.01)
    # A few at once, then spread: never closer than 80 % of the even interval.
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps[:14] == [0.0] * 14
    assert min(gaps[15:]) >= 0.8 / 30 - 1e-9


@pytest.mark.parametrize("latency", [0.002, 0.05, 0.3])
async def test_wherever_the_platform_counts_a_send_no_second_holds_more_than_the_limit(
    clock: Clock, latency: float
) -> None:
    gate = SendWindow(30.0, clock=clock, sleep=Sleeper(clock))
    stamps = await sends(gate, clock, 181, latency)
    # The platform may count a send anywhere between its start and its answer: at the start
    # of some and the answer of others is the worst case for a sliding second.
    for counted in (
        [s for s, _ in stamps],
        [a for _, a in stamps],
        [s if n % 2 else a for n, (s, a) in enumerate(stamps)],
    ):
        assert most_in(counted, 1.0) <= 30
    if latency < gate.min_gap:  # (here one send at a time: a longer one is the bound)
        # What it costs: the latency is added to each window.
        assert 180 / (stamps[180][0] - stamps[0][0]) == pytest.approx(30 / (1 + latency), rel=0.02)


async def test_late_wake_ups_cost_a_send_window_no_rate(clock: Clock) -> None:
    gate = SendWindow(30.0, clock=clock, sleep=Sleeper(clock, late=0.005))
    sent = [s for s, _ in await sends(gate, clock, 300)]
    assert most_in(sent, 1.0) <= 30
    assert 270 / (sent[270] - sent[0]) >= 30 * 0.99


async def test_a_send_window_waits_for_sends_in_flight() -> None:
    gate = SendWindow(2.0, window=0.05)  # 2 sends in any 50 ms: 40/s
    assert gate.count == 1 or gate.count == 2
    await gate.take()
    if gate.count == 1:
        waiter = asyncio.create_task(gate.take())
        await asyncio.sleep(0.1)
        assert not waiter.done()  # the first is still in flight
        gate.done()
        await asyncio.wait_for(waiter, 1)


async def test_a_slow_limit_gets_a_window_of_its_own(clock: Clock) -> None:
    gate = SendWindow(0.5, clock=clock, sleep=Sleeper(clock))
    sent = [s for s, _ in await sends(gate, clock, 3)]
    assert [b - a for a, b in itertools.pairwise(sent)] == [2.0, 2.0]


async def test_a_send_window_serves_waiters_in_order() -> None:
    gate = SendWindow(400.0)
    order: list[int] = []

    async def send(n: int) -> None:
        await gate.take()
        order.append(n)
        gate.done()

    await asyncio.gather(*(send(n) for n in range(50)))
    assert order == list(range(50))


async def test_a_paused_send_window_lets_nothing_through_until_then(clock: Clock) -> None:
    gate = SendWindow(100.0, clock=clock, sleep=Sleeper(clock))
    await gate.take()
    gate.done()
    gate.pause(1.5)
    before = clock()
    await gate.take()
    assert clock() - before == pytest.approx(1.5)


# Cadence: a chat's pace


async def test_a_cadence_allows_its_burst_then_its_rate(clock: Clock) -> None:
    cadence = Cadence(1.0, 3, clock=clock, sleep=Sleeper(clock))
    sent = []
    for _ in range(6):
        await cadence.take()
        sent.append(clock() - 1000.0)
        cadence.done()
    assert sent == pytest.approx([0.0, 0.0, 0.0, 1.0, 2.0, 3.0])
    assert not cadence.rested()
    clock.advance(10)
    assert cadence.rested()


@pytest.mark.parametrize("seed", range(5))
async def test_a_cadence_never_meets_a_429_wherever_the_platform_counts(
    clock: Clock, seed: int
) -> None:
    # The platform's bucket (the stand-in's) counts each message somewhere between its send
    # and its answer; the latency varies from message to message.
    platform = Bucket(1.0, 3, clock=clock)
    cadence = Cadence(1.0, 3, clock=clock, sleep=Sleeper(clock))
    chance = random.Random(seed)
    for _ in range(40):
        await cadence.take()
        latency = chance.choice([0.0, 0.01, 0.2, 0.9])
        counted_after = chance.uniform(0, latency)
        clock.advance(counted_after)
        assert platform.due("chat") == 0.0
        platform.take("chat")
        clock.advance(latency - counted_after)
        cadence.done()
        clock.advance(chance.choice([0.0, 0.0, 0.5, 2.0]))  # the next message may come later


async def test_a_send_window_is_busy_from_half_its_places_taken(clock: Clock) -> None:
    gate = SendWindow(30.0, clock=clock, sleep=Sleeper(clock))
    await sends(gate, clock, 14)
    assert not gate.busy()
    await gate.take()  # the 15th, still in flight
    assert gate.busy()
    gate.done()
    clock.advance(1.0)  # all answered a window ago: their places are free again
    assert not gate.busy()


async def test_a_paused_gate_says_so_until_the_pause_is_over(clock: Clock) -> None:
    for gate in (SendWindow(30.0, clock=clock), TokenBucket(30.0, 30, clock=clock)):
        assert not gate.paused()
        gate.pause(2.0)
        assert gate.paused()
        clock.advance(1.9)
        assert gate.paused()
        clock.advance(0.2)
        assert not gate.paused()
