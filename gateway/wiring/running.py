"""One salon at work: its services, handlers and deliveries built, its workers and periodic
tasks running; stopped and closed as one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.pipeline.fair_slots import WorkSlots
from gateway.wiring.background import Background, shard_runner, start_background
from gateway.wiring.conversations import build_handlers
from gateway.wiring.outflow import build_outflow
from gateway.wiring.runtime import Runtime
from gateway.wiring.services import Services, build_services


@dataclass
class RunningSalon:
    runtime: Runtime
    services: Services
    background: Background

    async def stop(self) -> None:
        """The workers give their shards back (in-flight turns finish within the grace; what
        was not started stays pending for the next holder), then the clients close."""
        self.runtime.stopping = True
        await self.background.stop(self.runtime)
        await self.services.aclose()


def start_salon(runtime: Runtime, clock: Callable[[], datetime], work: WorkSlots) -> RunningSalon:
    """Build the salon's services, the handlers and the outbox's deliveries, and start its
    workers and periodic tasks (in a process that runs workers); its workers take their slots
    from `work`, which every salon of the process shares."""
    services = build_services(runtime, clock)
    conversations = build_handlers(runtime, services, clock)
    outflow = build_outflow(runtime, services, clock)
    run_shard = shard_runner(runtime, conversations, outflow, work)
    background = start_background(runtime, services, run_shard, clock, conversations.waitlist)
    return RunningSalon(runtime, services, background)
