"""`frontdesk check`'s lines on the owner's weekly report: who gets it (masked), in which
language, when it is sent next and which week that is, and whether it can be sent at all."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.analytics.weekly import Week
from gateway.integrations.metabase.week_link import LINK_DAYS
from gateway.owner_settings import masked_email
from gateway.settings import Settings


def report_lines(settings: Settings, now: datetime) -> list[tuple[bool | None, str]]:
    """(ok, detail) per line: None is off, False a problem the operator must fix."""
    salon = settings.salon
    owner = salon.owner
    if owner is None:
        return [(None, "off: OWNER_EMAIL is not set (no owner's report)")]
    lines: list[tuple[bool | None, str]] = []
    needs = [
        name
        for name, missing in (
            ("NOVU_API_URL and NOVU_API_KEY", salon.novu is None),
            ("ANALYTICS_DATABASE_URL", settings.analytics is None),
        )
        if missing
    ]
    to = f"to {masked_email(owner.email)} in {owner.locale}"
    if needs:
        lines.append((False, f"{to}, but sending it needs {', '.join(needs)}"))
    if owner.schedule is None:
        when = "on demand only (REPORT_SCHEDULE is empty): `frontdesk analytics report --send`"
    else:
        zone = salon.profile.zone
        moment = owner.schedule.next_at(now, zone)
        week = Week.of(moment.date() - timedelta(days=7))
        when = (
            f"every {owner.schedule.describe()} ({salon.profile.timezone}); next "
            f"{moment:%a %Y-%m-%d %H:%M}, the week {week.name}"
        )
    # Once what is missing is set (the line above): the schedule itself is valid.
    lines.append((True, f"{to}, {when}") if not needs else (None, when))
    if salon.embedding is None or settings.public_url is None:
        lines.append((None, "no dashboard link (PUBLIC_URL and the embed settings make one)"))
    else:
        link = f"{settings.public_url}/analytics/week/{salon.profile.id}/<week>"
        lines.append((True, f"links to the week's dashboard: {link}, opens {LINK_DAYS} days"))
    return lines
