"""Setting the stand-in's salon up: masters and their hours, teams, event types, and the
believable demo salon `frontdesk demo` books in."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.sandbox.calcom.bookings import Bookings
from gateway.sandbox.calcom.demo_salons import FIRST, DemoSalon
from gateway.sandbox.calcom.model import _clock_time, _cut, _Schedule, _Team, _zone


class Seeding(Bookings):
    """What a salon sets up in Cal.com's settings, done in code."""

    # -- seeding --------------------------------------------------------------------------

    def add_master(
        self,
        name: str,
        email: str,
        time_zone: str,
        weekly: Mapping[int, Sequence[tuple[str, str]]] | None = None,
        breaks: Sequence[tuple[str, str]] = (),
        *,
        username: str | None = None,
    ) -> int:
        """A master with a schedule: `weekly` maps a weekday (0 = Monday) to "HH:MM" ranges
        (default Mon-Sat 10:00-20:00); `breaks` are cut out of every working day."""
        if _zone(time_zone) is None:
            raise ValueError(f"not an IANA time zone: {time_zone}")
        hours = weekly if weekly is not None else {day: [("10:00", "20:00")] for day in range(6)}
        gaps = [(_clock_time(a), _clock_time(b)) for a, b in breaks]
        days: dict[int, list[tuple[time, time]]] = {}
        for weekday, ranges in hours.items():
            days[weekday] = _cut([(_clock_time(a), _clock_time(b)) for a, b in ranges], gaps)
        schedule = _Schedule(time_zone, days)
        login = username or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        return self._add_user(name, email, time_zone, schedule, login).id

    def add_override(self, user_id: int, day: date, ranges: Sequence[tuple[str, str]] = ()) -> None:
        """Replace one date's hours for a master (no ranges: a day off)."""
        schedule = self._users[user_id].schedule
        if schedule is None:
            raise ValueError(f"user {user_id} has no schedule")
        schedule.overrides[day] = [(_clock_time(a), _clock_time(b)) for a, b in ranges]

    def add_team(self, name: str, slug: str) -> int:
        if any(team.slug == slug for team in self._teams.values()):
            raise ValueError(f"a team with slug {slug!r} exists")
        team = _Team(next(self._ids["team"]), slug, name)
        self._teams[team.id] = team
        return team.id

    def add_event_type(
        self,
        owner_id: int,
        slug: str,
        title: str,
        length: int,
        *,
        price: int | None = None,
        currency: str = "RUB",
        category: str | None = None,
        **options: Any,
    ) -> int:
        """A master's own event type (masters may share a slug). The salon's list `price` (whole
        units) and `category` go into `metadata`; `paid=True` also sets Cal.com's `price` field,
        as a payment app would (minor units). Other options: description, metadata, hidden,
        minimum_notice (min, default 120), before_buffer, after_buffer, slot_interval,
        email_required (default True, as Cal.com's default booking fields; False lets a
        phone-only attendee book)."""
        if owner_id not in self._users:
            raise ValueError(f"no user {owner_id}")
        if any(et.owner_id == owner_id and et.slug == slug for et in self._event_types.values()):
            raise ValueError(f"user {owner_id} already has an event type {slug!r}")
        return self._add_event_type(
            slug, title, length, price, currency, category, options, owner_id=owner_id
        )

    def add_team_event_type(
        self,
        slug: str,
        title: str,
        length: int,
        *,
        host_ids: Sequence[int],
        team_id: int | None = None,
        scheduling: str = "roundRobin",
        price: int | None = None,
        currency: str = "RUB",
        category: str | None = None,
        **options: Any,
    ) -> int:
        """A team event type with these masters as hosts; `scheduling` is "roundRobin" (any free
        host takes it) or "collective" (all hosts at once). Options as `add_event_type`."""
        if scheduling not in ("roundRobin", "collective"):
            raise ValueError("scheduling must be roundRobin or collective")
        if not host_ids or any(host not in self._users for host in host_ids):
            raise ValueError("hosts must be existing masters")
        if team_id is None:
            team_id = next(iter(self._teams), None) or self.add_team("Salon", "salon")
        if any(et.team_id == team_id and et.slug == slug for et in self._event_types.values()):
            raise ValueError(f"team {team_id} already has an event type {slug!r}")
        return self._add_event_type(
            slug,
            title,
            length,
            price,
            currency,
            category,
            options,
            team_id=team_id,
            host_ids=list(host_ids),
            scheduling=scheduling,
        )

    def seed_demo_salon(self, zone: str = "Europe/Moscow", salon: DemoSalon = FIRST) -> int:
        """A believable salon to book in (by default the demo's first: 3 masters, 6 services,
        a few bookings; `SECOND` is the demo's Russian one); the team id."""
        self.salon_address = salon.address
        team_id = self.add_team(salon.team, salon.slug)
        masters = [
            self.add_master(
                master.name,
                master.email,
                zone,
                master.weekly,
                master.breaks,
                username=master.username,
            )
            for master in salon.masters
        ]
        # Both ways a salon sets up Cal.com: a round-robin team event type (Cal.com gives the
        # booking to a free host: "any master"), and one event type per master for a service
        # (`metadata.service` groups them), so the client may choose who.
        ids: dict[tuple[str, int], int] = {}
        for service in salon.services:
            for offer in service.offers:
                hosts = [masters[index] for index in offer]
                own = len(service.offers) > 1
                slug = f"{service.slug}-{self._users[hosts[0]].username}" if own else service.slug
                type_id = self.add_team_event_type(
                    slug,
                    service.title,
                    service.length,
                    host_ids=hosts,
                    team_id=team_id,
                    price=service.price,
                    category=service.category,
                    metadata={
                        "service": service.slug,
                        "title_ru": service.title_ru,
                        "category_ru": service.category_ru,
                    },
                    minimum_notice=60,
                    slot_interval=30,
                    after_buffer=15 if service.category in ("Nails", "Ногти") else 0,
                    email_required=False,
                )
                ids.update({(service.slug, host): type_id for host in hosts})
        today = self._now().astimezone(ZoneInfo(zone)).date()
        for made in salon.bookings:
            host = masters[made.master]
            day = self._next_working_day(host, today + timedelta(days=made.days))
            start = datetime.combine(day, _clock_time(made.at), ZoneInfo(zone)).astimezone(UTC)
            attendee = {
                "name": made.client,
                "phoneNumber": made.phone,
                "timeZone": zone,
                "language": "ru",
            }
            event_type = self._event_types[ids[made.service, host]]
            booking = self._store_booking(event_type, start, [host], attendee, {}, {})
            # Made over the past week, before Frontdesk was installed.
            booking.created = booking.updated = self._now() - timedelta(days=7 - made.days)
        return team_id
