"""`frontdesk setup` (the environment's salon) and `frontdesk salons setup <id>` (a registry
salon): every provider-side step, each only when its integration is configured, then `check`.

The plan comes first: every step reads what its provider has and says what it would change
(`plan:`) or that nothing needs to (`in place:`); `--dry-run` stops there. Then each planned
step runs (`done:` or `failed: <reason>`), and `frontdesk check` for that salon ends it. A
second run finds everything in place and writes nothing. What setup found that the salon's
settings do not say yet (a created inbox's id, the dashboard's) is written back to the
registry for a registry salon, and printed as variables to set for the environment's salon.
"""

from __future__ import annotations

import sys

from gateway.ops.check import run_check
from gateway.ops.setup_chatwoot import NEW_INBOX, chatwoot_steps
from gateway.ops.setup_steps import (
    Step,
    StepFailed,
    Target,
    analytics_step,
    calcom_step,
    metabase_step,
    novu_step,
    telegram_step,
)
from gateway.pipeline.logs import Scrubber, scrubbed_output
from gateway.salon_settings import SalonSettings
from gateway.salons import SalonRegistry
from gateway.salons.values import validate_salon
from gateway.settings import Settings, SettingsError, load

EXIT_CONFIG = 2
# The settings' own line when Chatwoot is on without an inbox id (salon_settings.py): setup
# is what makes the inboxes, so it reads such a salon with NEW_INBOX in their place.
_NO_INBOX = "CHATWOOT_TELEGRAM_INBOX_ID or CHATWOOT_WHATSAPP_INBOX_ID"
_INBOX_NAMES = ("CHATWOOT_TELEGRAM_INBOX_ID", "CHATWOOT_WHATSAPP_INBOX_ID")


def load_for_setup() -> Settings:
    """The environment's settings, as `load`, but Chatwoot may lack its inbox ids yet."""
    try:
        return load()
    except SettingsError as exc:
        if not any(_NO_INBOX in problem for problem in exc.problems):
            raise
    settings = load(**{name.lower(): NEW_INBOX for name in _INBOX_NAMES})
    unused = {name.lower(): None for name in _unused_inboxes(settings.salon)}
    # Only an inbox that setup will make stands in (`check` would look for inbox 0).
    return settings.with_salon(**unused) if len(unused) == 1 else settings


def salon_for_setup(values: dict[str, str], salon_id: str) -> SalonSettings:
    """A registry salon's settings, as `validate_salon`, but Chatwoot may lack its inbox ids."""
    try:
        return validate_salon(values, salon_id)
    except SettingsError as exc:
        if not any(_NO_INBOX in problem for problem in exc.problems):
            raise
    pending = dict.fromkeys(_INBOX_NAMES, str(NEW_INBOX))
    salon = validate_salon(values | pending, salon_id)
    unused = _unused_inboxes(salon)
    if len(unused) != 1:
        return salon
    return validate_salon(values | {n: v for n, v in pending.items() if n not in unused}, salon_id)


def _unused_inboxes(salon: SalonSettings) -> list[str]:
    """The inbox names of the messengers the salon has off."""
    return [
        name
        for name, channel in zip(_INBOX_NAMES, ("telegram", "whatsapp"), strict=True)
        if getattr(salon, channel) is None
    ]


def steps_for(target: Target) -> list[Step]:
    """The steps of the integrations the salon has on, in the order a new salon needs them."""
    salon = target.salon
    steps: list[Step] = []
    if salon.telegram is not None:
        steps.append(telegram_step(salon.telegram, target))
    if salon.calcom is not None:
        steps.append(calcom_step(salon.calcom, target))
    if salon.chatwoot is not None:
        steps += chatwoot_steps(salon.chatwoot, target)
    if salon.novu is not None:
        steps.append(novu_step(salon.novu, target))
    if target.analytics_url is not None:
        steps.append(analytics_step(target.analytics_url))
    if salon.metabase is not None and target.analytics_url is not None:
        steps.append(metabase_step(salon.metabase, target, target.analytics_url))
    return steps


async def run_steps(target: Target, dry_run: bool) -> bool:
    """Plan, then (unless `dry_run`) apply; one line a step and outcome. False if any failed."""
    steps = steps_for(target)
    if not steps:
        print("in place: nothing to set up (no integration is configured)")
        return True
    planned: list[Step] = []
    failed = False
    for step in steps:
        if step.inspect is None:
            print(f"plan: {step.name}: compared and brought up to date when it runs")
            planned.append(step)
            continue
        try:
            change = await step.inspect()
        except StepFailed as exc:
            print(f"failed: {step.name}: {exc}")
            failed = True
            continue
        if change is None:
            print(f"in place: {step.name}")
        else:
            print(f"plan: {step.name}: {change}")
            planned.append(step)
    if dry_run:
        print("dry run: nothing was changed")
        return not failed
    for step in planned:
        try:
            done = await step.apply()
        except StepFailed as exc:
            print(f"failed: {step.name}: {exc}")
            failed = True
            continue
        print(f"in place: {step.name}" if done is None else f"done: {step.name}: {done}")
    if not planned and not failed:
        print("everything was in place: nothing changed")
    return not failed


async def setup_environment(settings: Settings, dry_run: bool) -> int:
    """`frontdesk setup`: the environment's salon, on today's routes."""
    target = _target(settings, settings.salon, None)
    if target is None:
        return EXIT_CONFIG
    ok = await run_steps(target, dry_run)
    if target.found:
        print("set these in the environment (then restart the gateway):")
        for name, value in sorted(target.found.items()):
            print(f"  {name}={value}")
    if dry_run:
        return 0 if ok else 1
    checked = settings.with_salon(**{n.lower(): v for n, v in target.found.items()})
    return await _end_with_check(checked, None, ok)


async def setup_registry_salon(
    settings: Settings, registry: SalonRegistry, salon_id: str, dry_run: bool
) -> int:
    """`frontdesk salons setup <id>`: a registry salon, on its own routes; what setup found is
    written back to its row."""
    salon = await registry.get(salon_id, decrypt=True)
    try:
        salon_settings = salon_for_setup(salon.environment(), salon.id)
    except SettingsError as exc:
        print(f"frontdesk: salon {salon_id}'s values have problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    target = _target(settings, salon_settings, salon.id)
    if target is None:
        return EXIT_CONFIG
    # The command's output is scrubbed of the environment's secrets; these are the salon's.
    with scrubbed_output(Scrubber(salon_settings.secrets())):
        return await _setup_registry_salon(settings, registry, target, dry_run)


async def _setup_registry_salon(
    settings: Settings, registry: SalonRegistry, target: Target, dry_run: bool
) -> int:
    salon_id, salon_settings = str(target.salon_id), target.salon
    ok = await run_steps(target, dry_run)
    if dry_run:
        return 0 if ok else 1
    if target.found:
        salon = await registry.update(salon_id, target.found)
        written = ", ".join(f"{n}={v}" for n, v in sorted(target.found.items()))
        print(f"done: registry: salon {salon_id} now has {written} (version {salon.version})")
        salon = await registry.get(salon_id, decrypt=True)
        salon_settings = salon_for_setup(salon.environment(), salon_id)
    checked = settings.model_copy(update={"salon": salon_settings})
    return await _end_with_check(checked, salon_id, ok)


def _target(settings: Settings, salon: SalonSettings, salon_id: str | None) -> Target | None:
    if settings.public_url is None:
        print("frontdesk: setup needs PUBLIC_URL (the providers post to it)", file=sys.stderr)
        return None
    analytics = settings.analytics
    database = analytics.database_url.get_secret_value() if analytics is not None else None
    return Target(salon, salon_id, settings.public_url, database)


async def _end_with_check(settings: Settings, salon_id: str | None, ok: bool) -> int:
    print("check:")
    checked = await run_check(settings, salon_id)
    return 0 if ok and checked == 0 else 1
