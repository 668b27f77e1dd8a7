"""The Cal.com API v2 stand-in (see `sandbox.py`), in parts by role: `state` (what it holds),
`pipeline` (every request's checks), `webhooks`, `event_types`, `slots`, `bookings`, `seeding`,
with `model`, `errors` and `validation` beneath them."""

from gateway.sandbox.base import Call
from gateway.sandbox.calcom.bookings import RESERVATION_COOKIE
from gateway.sandbox.calcom.errors import CalcomError
from gateway.sandbox.calcom.model import now_utc
from gateway.sandbox.calcom.pipeline import KNOWN_VERSIONS, RATE_WINDOW, VERSIONS
from gateway.sandbox.calcom.sandbox import CalcomSandbox
from gateway.sandbox.calcom.state import OWNER_EMAIL, RATE_LIMIT, SentWebhook
from gateway.sandbox.calcom.validation import _BOOKING_PIPE, _GLOBAL_PIPE, _class_validator
from gateway.sandbox.calcom.webhooks import SIGNATURE_HEADER, WEBHOOK_TRIGGERS, WEBHOOK_VERSION

__all__ = [
    "KNOWN_VERSIONS",
    "OWNER_EMAIL",
    "RATE_LIMIT",
    "RATE_WINDOW",
    "RESERVATION_COOKIE",
    "SIGNATURE_HEADER",
    "VERSIONS",
    "WEBHOOK_TRIGGERS",
    "WEBHOOK_VERSION",
    "_BOOKING_PIPE",
    "_GLOBAL_PIPE",
    "CalcomError",
    "CalcomSandbox",
    "Call",
    "SentWebhook",
    "_class_validator",
    "now_utc",
]
