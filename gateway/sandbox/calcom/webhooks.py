"""Cal.com's webhooks (§1.10): the subscriptions of `/v2/webhooks`, and the signed
`{triggerEvent, createdAt, payload}` each booking change sends, in the background."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.sandbox.calcom.errors import CalcomError, _ok
from gateway.sandbox.calcom.model import JSON, _Booking, _iso, _Webhook
from gateway.sandbox.calcom.pipeline import RequestPipeline
from gateway.sandbox.calcom.state import SentWebhook
from gateway.sandbox.calcom.validation import _GLOBAL_PIPE, _class_validator, _invalid
from gateway.sandbox.spec import Spec

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Cal-Signature-256"
WEBHOOK_VERSION = "2021-10-20"

# The booking triggers of prisma's WebhookTriggerEvents enum (packages/prisma/schema.prisma; the
# docs' list, contract §1.10), and the others Cal.com accepts too.
WEBHOOK_TRIGGERS = (
    "BOOKING_CANCELLED",
    "BOOKING_CREATED",
    "BOOKING_RESCHEDULED",
    "BOOKING_REQUESTED",
    "BOOKING_REJECTED",
    "BOOKING_PAYMENT_INITIATED",
    "BOOKING_PAID",
    "BOOKING_NO_SHOW_UPDATED",
    "MEETING_STARTED",
    "MEETING_ENDED",
    "RECORDING_READY",
    "RECORDING_TRANSCRIPTION_GENERATED",
    "FORM_SUBMITTED",
    "FORM_SUBMITTED_NO_EVENT",
    "INSTANT_MEETING",
    "OOO_CREATED",
    "AFTER_HOSTS_CAL_VIDEO_NO_SHOW",
    "AFTER_GUESTS_CAL_VIDEO_NO_SHOW",
)


# CreateWebhookInputDto (apps/api/v2/src/modules/webhooks/inputs/webhook.input.ts @
# 03670679c00d600615e8df2bc64545bd51c61646) as NestJS's swagger renders it (the trimmed spec has
# no /v2/webhooks): `active` boolean, `subscriberUrl` string and `triggers` an array of
# WebhookTriggerEvents (`@IsEnum(..., { each: true })`) are required; `payloadTemplate` and
# `secret` optional strings.
_WEBHOOK_INPUT: JSON = {
    "type": "object",
    "required": ["active", "subscriberUrl", "triggers"],
    "properties": {
        "active": {"type": "boolean"},
        "subscriberUrl": {"type": "string"},
        "triggers": {"type": "array", "enum": list(WEBHOOK_TRIGGERS), "items": {"type": "string"}},
        "payloadTemplate": {"type": "string"},
        "secret": {"type": "string"},
    },
}


def _check_webhook(body: JSON, *, partial: bool) -> None:
    """The global ValidationPipe on CreateWebhookInputDto, or on UpdateWebhookInputDto (its
    PartialType: every field optional)."""
    schema = _WEBHOOK_INPUT | {"required": []} if partial else _WEBHOOK_INPUT
    problems = Spec({}).problems(body, schema, _GLOBAL_PIPE)
    if problems:
        raise _invalid(_class_validator(problems, body), body, pipe=False)


def _webhook_json(hook: _Webhook) -> JSON:
    """UserWebhookOutputDto through WebhookOutputPipe (`eventTriggers` → `triggers`); the
    `secret` is an exposed output field (outputs/webhook.output.ts @ 03670679)."""
    return {
        "id": hook.id,
        "userId": hook.user_id,
        "payloadTemplate": hook.payload_template,
        "triggers": list(hook.triggers),
        "subscriberUrl": hook.subscriber_url,
        "active": hook.active,
        "secret": hook.secret,
    }


def _int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "")
    return int(raw) if raw.isdigit() else default


class Webhooks(RequestPipeline):
    """The webhook subscriptions and the delivery of every booking change."""

    # -- webhook subscriptions (§1.10, /v2/webhooks) --------------------------------------

    @property
    def webhooks(self) -> list[JSON]:
        """The registered webhooks as `GET /v2/webhooks` shows them."""
        return [_webhook_json(hook) for hook in self._webhooks.values()]

    async def _create_webhook(self, request: web.Request, _authed: bool) -> web.Response:
        body = await self._json_body(request)
        self._validate(request, "/v2/webhooks", body, pipe=False)
        _check_webhook(body, partial=False)
        url = body["subscriberUrl"]
        # user-webhooks.service.ts createUserWebhook: one webhook per user and subscriber URL.
        if any(h.subscriber_url == url for h in self._webhooks.values()):
            raise CalcomError(409, "Webhook with this subscriber url already exists for this user")
        hook = _Webhook(
            id=str(uuid.uuid4()),
            user_id=self.owner_id,
            subscriber_url=url,
            triggers=list(body["triggers"]),
            active=body["active"],
            secret=body.get("secret"),
            payload_template=body.get("payloadTemplate"),
        )
        self._webhooks[hook.id] = hook
        return _ok(_webhook_json(hook), status=201)

    async def _get_webhooks(self, request: web.Request, _authed: bool) -> web.Response:
        self._validate_query(request, "/v2/webhooks")
        # webhooks.controller.ts getWebhooks: SkipTakePagination, take defaulting to 250.
        skip, take = _int_query(request, "skip", 0), _int_query(request, "take", 250)
        hooks = list(self._webhooks.values())[skip : skip + take]
        return _ok([_webhook_json(hook) for hook in hooks])

    def _find_webhook(self, request: web.Request) -> _Webhook:
        hook = self._webhooks.get(request.match_info["webhookId"])
        if hook is None:  # IsUserWebhookGuard
            raise CalcomError(404, f"Webhook ({request.match_info['webhookId']}) not found")
        return hook

    async def _get_webhook(self, request: web.Request, _authed: bool) -> web.Response:
        return _ok(_webhook_json(self._find_webhook(request)))

    async def _update_webhook(self, request: web.Request, _authed: bool) -> web.Response:
        hook = self._find_webhook(request)
        body = await self._json_body(request)
        self._validate(request, "/v2/webhooks/{webhookId}", body, pipe=False)
        _check_webhook(body, partial=True)
        # UpdateWebhookInputDto is PartialType(CreateWebhookInputDto): what is sent changes.
        if body.get("subscriberUrl") is not None:
            hook.subscriber_url = body["subscriberUrl"]
        if body.get("triggers") is not None:
            hook.triggers = list(body["triggers"])
        if body.get("active") is not None:
            hook.active = body["active"]
        if "secret" in body:
            hook.secret = body["secret"]
        if "payloadTemplate" in body:
            hook.payload_template = body["payloadTemplate"]
        return _ok(_webhook_json(hook))

    async def _delete_webhook(self, request: web.Request, _authed: bool) -> web.Response:
        hook = self._find_webhook(request)
        del self._webhooks[hook.id]
        return _ok(_webhook_json(hook))

    # -- webhooks (§1.10) -----------------------------------------------------------------

    def _emit(self, trigger: str, booking: _Booking, previous: _Booking | None = None) -> None:
        """Build the envelope now (the state as of this change) and deliver it in the background,
        as Cal.com does: the API answer does not wait for the webhook."""
        subscribers = [(self.webhook_url, self.webhook_secret)] if self.webhook_url else []
        # getWebhooks: the active webhooks whose eventTriggers hold this trigger.
        subscribers += [
            (hook.subscriber_url, hook.secret)
            for hook in self._webhooks.values()
            if hook.active and trigger in hook.triggers
        ]
        if not subscribers:
            return
        payload = self._webhook_payload(trigger, booking, previous)
        envelope = {"triggerEvent": trigger, "createdAt": _iso(self._now()), "payload": payload}
        for url, secret in subscribers:
            self._spawn(self._deliver(trigger, envelope, url, secret))

    async def _deliver(self, trigger: str, envelope: JSON, url: str, secret: str | None) -> None:
        # Compact like JSON.stringify; the signature covers exactly these bytes.
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        signature = (
            hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if secret
            else "no-secret-provided"
        )
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature,
            "X-Cal-Webhook-Version": WEBHOOK_VERSION,
        }
        answer = await self._post(url, body, headers, answer_within=self.webhook_timeout)
        if not answer.status:
            log.warning("sandbox: %s webhook undelivered: %s", trigger, answer.reason)
        self.webhooks_sent.append(SentWebhook(trigger, envelope, body, signature, answer.status))

    def _webhook_payload(self, trigger: str, booking: _Booking, previous: _Booking | None) -> JSON:
        et = self._event_types[booking.event_type_id]
        host = self._users[booking.host_ids[0]]
        attendee = booking.attendee
        # §1.10: created/rescheduled print `...Z`, cancelled prints `...+00:00`.
        cancelled = trigger == "BOOKING_CANCELLED"
        payload: JSON = {
            "bookerUrl": "https://cal.com",
            "type": et.slug,
            "title": f"{et.title} between {host.name} and {attendee['name']}",
            "description": "",
            "additionalNotes": "",
            "customInputs": {},
            "startTime": _stamp(booking.start, cancelled),
            "endTime": _stamp(booking.end, cancelled),
            "organizer": {
                "id": host.id,
                "name": host.name,
                "email": host.email,
                "username": host.username,
                "timeZone": host.time_zone,
                "language": {"locale": "en"},
                "timeFormat": "h:mma",
                "utcOffset": _utc_offset(booking.start, host.time_zone),
            },
            "attendees": [_attendee(booking, cancelled)],
            "responses": _responses(attendee),
            "userFieldsResponses": {},
            "location": booking.location,
            "destinationCalendar": None,
            "iCalUID": f"{booking.uid}@Cal.com",
            "iCalSequence": booking.sequence,
            "eventTypeId": et.id,
            "hideCalendarNotes": False,
            "schedulingType": {"roundRobin": "ROUND_ROBIN", "collective": "COLLECTIVE"}.get(
                et.scheduling or ""
            ),
            "seatsPerTimeSlot": None,
            "requiresConfirmation": False,
            "organizationId": None,
            "uid": booking.uid,
            "eventTitle": et.title,
            "eventDescription": et.description,
            "price": et.price,
            "currency": et.currency,
            "length": et.length,
            "bookingId": booking.id,
            "metadata": dict(booking.metadata),
            "status": booking.status.upper(),
        }
        if cancelled:
            _as_cancelled(payload, booking)
        if previous is not None:
            payload |= {
                "rescheduleId": previous.id,
                "rescheduleUid": previous.uid,
                "rescheduleStartTime": _stamp(previous.start, cancelled),
                "rescheduleEndTime": _stamp(previous.end, cancelled),
            }
        return payload


def _stamp(moment: datetime, cancelled: bool) -> str:
    """An instant as the trigger prints it (§1.10: `...+00:00` when cancelled, else `...Z`)."""
    text = moment.astimezone(UTC).isoformat(timespec="seconds")
    return text if cancelled else text.replace("+00:00", "Z")


def _utc_offset(moment: datetime, zone: str) -> int:
    """The zone's offset from UTC at `moment`, in minutes."""
    delta = moment.astimezone(ZoneInfo(zone)).utcoffset() or timedelta()
    return int(delta.total_seconds() // 60)


def _attendee(booking: _Booking, cancelled: bool) -> JSON:
    attendee = booking.attendee
    first, _, last = attendee["name"].partition(" ")
    person: JSON = {
        "email": attendee["email"],
        "name": attendee["name"],
        "firstName": first,
        "lastName": last,
        "timeZone": attendee["timeZone"],
        "language": {"locale": attendee["language"]},
        "utcOffset": _utc_offset(booking.start, attendee["timeZone"]),
    }
    if "phoneNumber" in attendee and not cancelled:
        # handleCancelBooking builds its attendees from name, email, timeZone and language
        # only (calcom/cal.com packages/features/bookings/lib/handleCancelBooking.ts @
        # 2446b58b7f257ba3b40ba3e0aacaca9a18fd188e; later versions add `phoneNumber`): the
        # client's phone cannot be relied on in a cancellation.
        person["phoneNumber"] = attendee["phoneNumber"]
    return person


def _responses(attendee: JSON) -> JSON:
    responses: JSON = {
        "name": {"label": "your_name", "value": attendee["name"], "isHidden": False},
        "email": {"label": "email_address", "value": attendee["email"], "isHidden": False},
    }
    if "phoneNumber" in attendee:
        responses["attendeePhoneNumber"] = {
            "label": "phone_number",
            "value": attendee["phoneNumber"],
            "isHidden": False,
        }
    return responses


def _as_cancelled(payload: JSON, booking: _Booking) -> None:
    # handleCancelBooking's payload is its CalendarEvent plus the event type's info,
    # `status`, `smsReminderNumber` and `cancelledBy`: no `metadata` (same file, at
    # 2446b58b7f257ba3b40ba3e0aacaca9a18fd188e and at
    # 001f8e29cefd26287042709228e41c0566b350ce).
    # Whose booking it is must come from the gateway's own records or the email.
    del payload["metadata"]
    payload |= {
        "cancellationReason": booking.cancellation_reason,
        "requestReschedule": False,
    }
    if booking.cancelled_by:  # undefined, so left out by JSON.stringify, otherwise
        payload["cancelledBy"] = booking.cancelled_by
