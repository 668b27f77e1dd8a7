"""What runs while the app is up: the worker pool over the shards, and the periodic looks for
what a vendor's webhook never brought."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.integrations.calcom.api import CalcomClient
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.calcom.waitlist_offers import WaitlistOffers
from gateway.integrations.chatwoot.api import ChatwootClient
from gateway.integrations.chatwoot.helpdesk import HelpDeskState
from gateway.integrations.novu.ledger import NoticeLedger
from gateway.integrations.novu.owner_report import ScheduledReports
from gateway.pipeline.fair_slots import FairSlots, WorkSlots
from gateway.pipeline.inbox import Inbox
from gateway.pipeline.outbox import OutboxSender
from gateway.pipeline.tasks import stop_task
from gateway.pipeline.workers import InboundConsumer, Lease, WorkerPool
from gateway.wiring.conversations import Conversations
from gateway.wiring.outflow import Outflow
from gateway.wiring.runtime import Runtime
from gateway.wiring.services import Services
from handlers import calcom as calcom_events
from handlers.chatwoot import reconcile
from handlers.novu import send_overdue

log = logging.getLogger("frontdesk.app")

# How many entries are handled, and how many messages sent, at once in this process, by all
# its salons together (gateway/pipeline/fair_slots.py shares them out), at most and at least:
# the bound moves between the two with how late the event loop runs. Every step of another
# salon's reply waits its turn on the loop behind the steps in flight, so while the work is CPU
# (a backlog of quick turns) fewer in flight means a shorter wait. Measured with `python -m
# bench fairness` (5,000 queued for salon A; B's median reply behind it over B's idle median;
# the time A's backlog took), on two cores shared with other work, with fixed bounds: 16 each:
# 7-12x, 13-22 s; 8 each: ~7x, 11-23 s; 4 each: 2.5-4x, 13-29 s; 2 each: 2.6-3.8x, 17-77 s.
# While the work waits on vendors (a Cal.com or a Bot API at 100-300 ms) the loop keeps time
# and the bound stays at its ceiling, so their calls overlap. A send is mostly such a wait,
# so sending keeps a higher floor: 16 sends of 250 ms are 64 messages a second, above two
# bots' 30/s even at the floor; 64 in flight carry ten bots at their limit at 200 ms.
# Handling's ceiling stays well under a Redis pool's 64 connections.
HANDLING_SLOTS = 16
HANDLING_FLOOR = 4
SENDING_SLOTS = 64
SENDING_FLOOR = 16


def work_slots() -> WorkSlots:
    """The process's shared schedulers (one per process, whatever the number of salons)."""
    return WorkSlots(
        FairSlots(HANDLING_SLOTS, floor=HANDLING_FLOOR),
        FairSlots(SENDING_SLOTS, floor=SENDING_FLOOR),
    )


@dataclass
class Background:
    """The tasks started, by name, stopped in the reverse order of what they depend on."""

    pool: asyncio.Task[None] | None = None
    periodic: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def stop(self, runtime: Runtime) -> None:
        for name, task in self.periodic.items():
            await stop_task(task, name)
        if runtime.pool is not None and self.pool is not None:
            await runtime.pool.stop(runtime.settings.shutdown_grace_seconds)
            await stop_task(self.pool, "worker pool")


def shard_runner(
    runtime: Runtime, conversations: Conversations, outflow: Outflow, work: WorkSlots
) -> Callable[[Lease], Awaitable[None]]:
    """What a worker does with a shard it holds: consume its inbound stream, send its outbox."""
    settings = runtime.settings
    # The salon's share of the process's slots: a backlog here holds no more than its share
    # once another salon has work (issue 18).
    salon_id = runtime.keys.salon_id
    handling_slots = work.handling.salon(salon_id)
    sending_slots = work.sending.salon(salon_id)
    # One wake-up event per shard: the edge sets it when it queues, the outbox after a commit.
    inbound_wake = [asyncio.Event() for _ in range(settings.stream_shards)]
    outbound_wake = [asyncio.Event() for _ in range(settings.stream_shards)]
    runtime.inbox.listen(inbound_wake)

    async def run_shard(lease: Lease) -> None:
        consumer = InboundConsumer(
            runtime.redis,
            lease,
            conversations.handlers,
            runtime.metrics,
            max_attempts=settings.max_attempts,
            wake=inbound_wake[lease.shard],
            sent=outbound_wake[lease.shard],
            slots=handling_slots,
            record_facts=conversations.recorder is not None,
        )
        sender = OutboxSender(
            runtime.redis,
            lease,
            outflow.deliveries,
            outflow.pacing,
            outflow.buckets,
            runtime.metrics,
            schedule=settings.outbox_retry_schedule,
            wake=outbound_wake[lease.shard],
            slots=sending_slots,
            held=outflow.held,
            buried=outflow.buried,
        )
        await work_shard(lease, consumer, sender, settings.shutdown_grace_seconds)

    return run_shard


def start_background(
    runtime: Runtime,
    services: Services,
    run_shard: Callable[[Lease], Awaitable[None]],
    clock: Callable[[], datetime],
    waitlist: WaitlistOffers | None = None,
) -> Background:
    """The pool and the periodic tasks, in a process that runs workers (RUN_WORKERS)."""
    background = Background()
    if not runtime.settings.run_workers:
        return background
    salon = runtime.settings.salon
    runtime.pool = WorkerPool(
        runtime.redis, runtime.keys, run_shard, lease_seconds=runtime.settings.lease_seconds
    )
    background.pool = asyncio.create_task(runtime.pool.run())
    periodic = background.periodic
    if services.ledger is not None and salon.novu is not None:
        grace, every = timedelta(seconds=salon.novu.grace_seconds), salon.novu.ledger_seconds
        periodic["Novu notice ledger"] = asyncio.create_task(
            _send_overdue_forever(services.ledger, runtime.inbox, every, grace, clock)
        )
    if services.chatwoot is not None and services.helpdesk_state is not None and salon.chatwoot:
        periodic["Chatwoot reconciliation"] = asyncio.create_task(
            _reconcile_forever(
                services.chatwoot.client,
                services.helpdesk_state,
                runtime.inbox,
                salon.chatwoot.reconcile_seconds,
            )
        )
    if services.calcom is not None and salon.calcom is not None:
        calcom = salon.calcom
        periodic["Cal.com reconciliation"] = asyncio.create_task(
            _reconcile_bookings_forever(
                services.calcom.client,
                services.links,
                runtime.inbox,
                calcom.reconcile_seconds,
                timedelta(hours=calcom.reconcile_lookback_hours),
                clock,
            )
        )
    if waitlist is not None and salon.calcom is not None:
        periodic["waitlist"] = asyncio.create_task(waitlist.run(salon.calcom.waitlist_seconds))
    if services.writer is not None:
        periodic["analytics writer"] = asyncio.create_task(services.writer.run())
    analytics = runtime.settings.analytics
    if services.novu and analytics and salon.owner and salon.owner.schedule:
        # REPORT_SCHEDULE: the owner's weekly report, looked for every minute.
        database_url = analytics.database_url.get_secret_value()
        schedule = ScheduledReports(
            salon, services.novu, database_url, runtime.settings.public_url, clock
        )
        periodic["owner report"] = asyncio.create_task(schedule.run())
    return background


async def _reconcile_forever(
    chatwoot: ChatwootClient, state: HelpDeskState, inbox: Inbox, every: float
) -> None:
    """Agent replies whose webhook never came, looked for every CHATWOOT_RECONCILE_SECONDS."""
    while True:
        await asyncio.sleep(every)
        try:
            await reconcile(chatwoot, state, inbox)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("Chatwoot reconciliation failed: %s", type(exc).__name__)


async def _reconcile_bookings_forever(
    calcom: CalcomClient,
    links: BookingLinks,
    inbox: Inbox,
    every: float,
    lookback: timedelta,
    clock: Callable[[], datetime],
) -> None:
    """Booking changes whose webhook never came, looked for every CALCOM_RECONCILE_SECONDS."""
    while True:
        await asyncio.sleep(every)
        try:
            await calcom_events.reconcile(calcom, links, inbox, clock(), lookback)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("Cal.com reconciliation failed: %s", type(exc).__name__)


async def _send_overdue_forever(
    ledger: NoticeLedger,
    inbox: Inbox,
    every: float,
    grace: timedelta,
    clock: Callable[[], datetime],
) -> None:
    """Messenger notices Novu did not post back, sent every NOVU_LEDGER_SECONDS once they are
    NOVU_GRACE_SECONDS past due."""
    while True:
        await asyncio.sleep(every)
        try:
            await send_overdue(ledger, inbox, clock(), grace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("the Novu notice ledger failed: %s", type(exc).__name__)


async def work_shard(
    lease: Lease, consumer: InboundConsumer, sender: OutboxSender, grace: float
) -> None:
    """Run a shard's consumer and sender until the lease is lost or given back.

    Given back (shutdown, rebalancing): the conversations in flight finish and the replies they
    committed are delivered, within `grace`; what was not started stays pending for the next
    holder. Lost: stop at once, the next holder may already be at work.
    """
    consume = asyncio.create_task(consumer.run())
    send = asyncio.create_task(sender.run())
    lost = asyncio.create_task(lease.lost.wait())
    ending = asyncio.create_task(lease.ending.wait())
    try:
        done, _ = await asyncio.wait(
            [consume, send, lost, ending], return_when=asyncio.FIRST_COMPLETED
        )
        deadline = time.monotonic() + grace
        await consumer.drain(deadline)
        if not lease.lost.is_set() and not send.done():
            sender.finishing = True
            sender.wake.set()
            await asyncio.wait([send], timeout=max(0.0, deadline - time.monotonic()))
    finally:
        lease.lost.set()
        await sender.drain(time.monotonic())
        for task in (consume, send, lost, ending):
            task.cancel()
        await asyncio.gather(consume, send, lost, ending, return_exceptions=True)
    for part in (consume, send):
        if part in done and not part.cancelled() and (error := part.exception()) is not None:
            raise error
