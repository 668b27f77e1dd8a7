"""Cal.com's event types (§1.4): the lists, one by id, and how the API shows one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.sandbox.calcom.errors import CalcomError, _ok
from gateway.sandbox.calcom.model import JSON, _EventType, _is_int
from gateway.sandbox.calcom.webhooks import Webhooks


class EventTypes(Webhooks):
    """The event type endpoints, and finding an event type the way the API is asked for one."""

    # -- event types (§1.4) ---------------------------------------------------------------

    async def _get_event_types(self, request: web.Request, authed: bool) -> web.Response:
        query = request.query
        username, slug = query.get("username"), query.get("eventSlug")
        if slug and not username:
            raise CalcomError(400, "eventSlug requires username")
        if username:
            user = next((u for u in self._users.values() if u.username == username), None)
            mine = user is not None and authed and user.id == self.owner_id
            found = [
                et
                for et in self._event_types.values()
                if user is not None and et.owner_id == user.id and (mine or not et.hidden)
            ]
            if slug:
                found = [et for et in found if et.slug == slug]
        elif authed and "usernames" not in query:  # no filter: the key owner's own, hidden too
            found = [et for et in self._event_types.values() if et.owner_id == self.owner_id]
        else:  # no credentials, or dynamic events (not emulated)
            found = []
        return _ok([self._event_type_json(et) for et in found])

    async def _get_event_type(self, request: web.Request, _authed: bool) -> web.Response:
        raw = request.match_info["eventTypeId"]
        if not raw.isdigit():
            raise CalcomError(400, "Validation failed (numeric string is expected)")
        et = self._event_types.get(int(raw))
        if et is None:
            raise CalcomError(404, f"Event type with id={raw} not found")
        return _ok(self._event_type_json(et))

    async def _get_team_event_types(self, request: web.Request, authed: bool) -> web.Response:
        raw = request.match_info["teamId"]
        if not raw.isdigit():
            raise CalcomError(400, "Validation failed (numeric string is expected)")
        slug = request.query.get("eventSlug")
        found = [
            et
            for et in self._event_types.values()
            if et.team_id == int(raw) and (authed or not et.hidden) and slug in (None, et.slug)
        ]
        return _ok([self._event_type_json(et) for et in found])

    def _event_type_json(self, et: _EventType) -> JSON:
        locations = [{"type": "address", "address": self.salon_address, "public": True}]
        data: JSON = {
            "id": et.id,
            "lengthInMinutes": et.length,
            "title": et.title,
            "slug": et.slug,
            "description": et.description,
            "locations": locations if self.salon_address else [],
            "bookingFields": [
                {"type": "name", "slug": "name", "isDefault": True, "required": True},
                {
                    "type": "email",
                    "slug": "email",
                    "isDefault": True,
                    "required": et.email_required,
                },
                {
                    "type": "phone",
                    "slug": "attendeePhoneNumber",
                    "isDefault": True,
                    "required": False,
                    "hidden": et.email_required,
                },
                {"type": "textarea", "slug": "notes", "isDefault": True, "required": False},
            ],
            "disableGuests": False,
            "slotInterval": et.slot_interval,
            "minimumBookingNotice": et.notice,
            "beforeEventBuffer": et.before,
            "afterEventBuffer": et.after,
            "recurrence": None,
            "metadata": dict(et.metadata),
            "price": et.price,
            "currency": et.currency,
            "lockTimeZoneToggleOnBookingPage": False,
            "seatsPerTimeSlot": None,
            "forwardParamsSuccessRedirect": None,
            "successRedirectUrl": None,
            "isInstantEvent": False,
            "scheduleId": None,
            "hidden": et.hidden,
            "bookingRequiresAuthentication": False,
        }
        if et.team_id is None:
            owner = self._users[et.owner_id or self.owner_id]
            user = {"id": owner.id, "name": owner.name, "username": owner.username}
            return data | {"ownerId": owner.id, "users": [user | {"avatarUrl": None}]}
        team = self._teams[et.team_id]
        hosts = [
            {
                "userId": host.id,
                "name": host.name,
                "username": host.username,
                "avatarUrl": None,
                "mandatory": False,
                "priority": "medium",
            }
            for host in map(self._users.__getitem__, et.host_ids)
        ]
        return data | {
            "teamId": team.id,
            "ownerId": None,
            "parentEventTypeId": None,
            "hosts": hosts,
            "assignAllTeamMembers": False,
            "schedulingType": et.scheduling,
            "team": {"id": team.id, "slug": team.slug, "name": team.name, "weekStart": "Monday"},
        }

    def _lookup(self, type_id: Any, slug: Any, username: Any, team_slug: Any) -> _EventType | None:
        """An event type by id, or by slug among a user's or a team's (unknown owners: 404)."""
        if _is_int(type_id) or (isinstance(type_id, str) and type_id.isdigit()):
            return self._event_types.get(int(type_id))
        if slug and username:
            user = next((u for u in self._users.values() if u.username == username), None)
            if user is None:
                raise CalcomError(404, f"User with username {username} not found")
            owner: tuple[int | None, int | None] = (user.id, None)
        elif slug and team_slug:
            team = next((t for t in self._teams.values() if t.slug == team_slug), None)
            if team is None:
                raise CalcomError(404, f"Team with slug {team_slug} not found")
            owner = (None, team.id)
        else:
            return None
        matches = (et for et in self._event_types.values() if (et.owner_id, et.team_id) == owner)
        return next((et for et in matches if et.slug == slug), None)
