"""The salon owner's report settings (OWNER_EMAIL, OWNER_LOCALE, REPORT_SCHEDULE).

Part of a salon's flat names (`gateway.salon_settings`), so each registry salon has its own; kept
here so that the salon's settings module stays small. The report itself is
`gateway.analytics.weekly` (its numbers) and `gateway.integrations.novu.owner_report` (sending).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ValidationInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEDULE = re.compile(r"^\s*([A-Za-z]{3})\s+([01]?\d|2[0-3]):([0-5]\d)\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class ReportSchedule:
    """A weekday and a time of day in the salon's time zone ("mon 09:00")."""

    weekday: int  # Monday is 0, as `date.weekday()`
    at: time

    @classmethod
    def parse(cls, text: str) -> ReportSchedule:
        found = _SCHEDULE.match(text)
        if found is None or found.group(1).lower() not in DAYS:
            raise ValueError("a weekday and a time, as in 'mon 09:00' (mon, tue, ..., sun)")
        day, hour, minute = found.group(1).lower(), int(found.group(2)), int(found.group(3))
        return cls(DAYS.index(day), time(hour, minute))

    def describe(self) -> str:
        return f"{DAYS[self.weekday]} {self.at:%H:%M}"

    def next_at(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The next moment of the schedule after `now`, on the salon's clock (what
        `frontdesk check` shows; the report it sends is of the week before that moment's)."""
        local = now.astimezone(zone)
        monday = local.date() - timedelta(days=local.weekday())
        moment = datetime.combine(monday + timedelta(days=self.weekday), self.at, tzinfo=zone)
        if moment <= local:
            moment = datetime.combine(
                monday + timedelta(days=self.weekday + 7), self.at, tzinfo=zone
            )
        return moment

    def due_in(self, now: datetime, zone: ZoneInfo) -> date | None:
        """The Monday of the week to report on when the report is due at `now`: the week before
        the current one (in the salon's time zone) once this week's moment has come."""
        local = now.astimezone(zone)
        monday = local.date() - timedelta(days=local.weekday())
        moment = datetime.combine(monday + timedelta(days=self.weekday), self.at, tzinfo=zone)
        if local < moment:
            return None
        return monday - timedelta(days=7)


def _schedule(value: str, info: ValidationInfo) -> str:
    if value.strip():
        ReportSchedule.parse(value)  # its ValueError says what is wrong
        # Half configured is an error (DESIGN §3): a schedule with nobody to send to would
        # look like reports are on. Only when OWNER_EMAIL itself is valid and absent.
        if "owner_email" in info.data and info.data["owner_email"] is None:
            raise ValueError("set OWNER_EMAIL too: the schedule has nobody to send the report to")
    return value.strip()


def masked_email(email: str) -> str:
    """The owner's address as `frontdesk check` shows it: enough to recognise, not to copy."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def _email(value: str | None) -> str | None:
    if value is not None and value.strip() and not _EMAIL.match(value.strip()):
        raise ValueError("does not look like an email address")
    return value.strip() if value and value.strip() else None


def _locale(value: str | None) -> str | None:
    if value and value.strip() and value.strip() not in ("ru", "en"):
        raise ValueError("must be one of ru, en")
    return value.strip() if value and value.strip() else None


ScheduleText = Annotated[str, AfterValidator(_schedule)]
Email = Annotated[str | None, AfterValidator(_email)]
Locale = Annotated[str | None, AfterValidator(_locale)]
OWNER_NAMES = ("owner_email", "owner_locale", "report_schedule")


class OwnerValues(BaseModel):
    """The owner's flat names, validated with the rest of the salon's (`_SalonValues`)."""

    # On when OWNER_EMAIL is set; OWNER_LOCALE defaults to DEFAULT_LOCALE; REPORT_SCHEDULE
    # ("mon 09:00", the salon's time) empty: sent only on demand.
    owner_email: Email = None
    owner_locale: Locale = None
    report_schedule: ScheduleText = ""


@dataclass(frozen=True, slots=True)
class OwnerReport:
    """Where the owner's report goes: an email (also the in-app feed of the owner's Novu
    subscriber), in their language (the salon's by default), and when it is sent."""

    email: str
    locale: str
    schedule: ReportSchedule | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> OwnerReport | None:
        """From the salon's validated flat names; None without OWNER_EMAIL."""
        email, locale, schedule = (data[name] for name in OWNER_NAMES)
        if email is None:
            return None
        locale = locale or data["default_locale"]
        return cls(email, locale, ReportSchedule.parse(schedule) if schedule else None)
