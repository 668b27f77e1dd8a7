"""The WhatsApp Cloud API, outbound: a typed httpx client and the outbox's delivery for WhatsApp.

Every call is `{WHATSAPP_API_URL}/{phone_number_id}/...` with the system user's bearer token,
bounded by a timeout and the service's circuit breaker. Graph errors are read by their `code`
(Meta deprecates the titles) and sorted into what the outbox does next:

| code | meaning | outbox |
|---|---|---|
| 130429, 131057 | the number's throughput reached (or upgrading) | all chats wait 2 s, doubling |
| 131056 | too many messages to this client in a short time | wait 6 s, doubling |
| 131049 | per-client marketing limit | wait a minute, doubling |
| 131047 | outside the 24-hour window | park it and send the "reply waiting" template |
| 131000, 5xx, 190, timeouts | WhatsApp (or our token) is broken | breaker, retry schedule |
| others (131026, 131051, 132000, 132001, 100, 368, ...) | retrying cannot help | dead letter |

A wait doubles with each refusal in a row of its code: the number's (throughput) counted for
the number, a client's (pair rate, marketing) for that client.

The window is checked before a free-form message is attempted: a message that would fall
outside it is parked (see `state.py` beside this) and the client gets the salon's approved
"reply waiting" template once, in their language.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway.integrations.chatwoot.files import (
    FALLBACK,
    FETCH_MARKER,
    MB,
    ChatwootFiles,
    FileRefused,
    StaffFile,
    fallback_of,
)
from gateway.integrations.http import (
    JsonApiClient,
    ServiceError,
    ServiceRejected,
    ServiceUnavailable,
)
from gateway.integrations.http import is_failure as is_failure
from gateway.integrations.whatsapp.state import WhatsAppState
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.outbox import PermanentFailure, RetryLater, Substituted
from gateway.pipeline.resilience import CircuitBreaker
from gateway.pipeline.streams import Outgoing

log = logging.getLogger("frontdesk.whatsapp")

OUT_OF_WINDOW = 131047
THROUGHPUT = 130429
THROUGHPUT_UPGRADE = 131057
PAIR_RATE = 131056
MARKETING_LIMIT = 131049
TRANSIENT = frozenset({131000, 190, 1, 2})
# Seconds to wait before the next try, per rate-limit code: the first wait, doubled for each
# refusal in a row with that code (to the same client, or for throughput to the number), up to
# the cap.
RATE_LIMITS = {
    THROUGHPUT: (2.0, 30.0),
    THROUGHPUT_UPGRADE: (5.0, 60.0),
    PAIR_RATE: (6.0, 120.0),
    MARKETING_LIMIT: (60.0, 3600.0),
}
# The key under which a parked (or remembered) message keeps who spoke.
AUTHOR = "_author"
# Marks a file inside a queued message: uploaded (POST /media) when the message is delivered.
UPLOAD_MARKER = "_upload"
_PHONE = re.compile(r"^\d{6,20}$")
# Meta, "Supported media types" (developers.facebook.com/docs/whatsapp/cloud-api/reference/
# media#supported-media-types): per message type, the MIME types it takes and the largest file.
MEDIA_LIMITS: dict[str, tuple[frozenset[str], int]] = {
    "image": (frozenset({"image/jpeg", "image/png"}), 5 * MB),
    "audio": (
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
        16 * MB,
    ),
    "video": (frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
    "document": (
        frozenset(
            {
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * MB,
    ),
}


class WhatsAppUnavailable(ServiceUnavailable):
    """WhatsApp is down or slow, or refuses our token: counted by the breaker, retried."""


class WhatsAppError(ServiceRejected):
    """A Graph API error answer."""

    def __init__(self, status: int, code: int | None, message: str, details: str = "") -> None:
        text = f"{code}: {message}" + (f" ({details})" if details else "")
        super().__init__(text, status=status)
        self.code = code


def address(chat: str) -> dict[str, str]:
    """A client is addressed by phone number (`to`) or, known only by their business-scoped id
    (2026), by `recipient`. The latter is newer than the v23 spec; see README, WhatsApp."""
    if _PHONE.match(chat):
        return {"to": chat}
    return {"recipient": chat}


class WhatsAppClient(JsonApiClient):
    unavailable_error = WhatsAppUnavailable

    def __init__(
        self,
        api_url: str,
        phone_number_id: str,
        access_token: str,
        breaker: CircuitBreaker,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api = api_url.rstrip("/")
        super().__init__(
            f"{self._api}/{phone_number_id}/",
            {"Authorization": f"Bearer {access_token}"},
            breaker,
            timeout=timeout,
            transport=transport,
        )

    async def send(self, chat: str, content: dict[str, Any]) -> str:
        """Send a message (text, interactive, document, template); returns its `wamid`."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        body |= address(chat)
        body |= content
        answer = await self._call("POST", "messages", json=body)
        messages = answer.get("messages") or [{}]
        return str(messages[0].get("id") or "")

    async def mark_read(self, message_id: str, *, typing: bool) -> None:
        """Blue ticks for the client's message and, while we answer, "typing…" (up to 25 s)."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing:
            body["typing_indicator"] = {"type": "text"}
        await self._call("POST", "messages", json=body)

    async def download(self, media_id: str) -> tuple[bytes, str]:
        """A file the client sent: its short-lived URL first, then the bytes (same token)."""
        answer = await self._exchange("GET", f"{self._api}/{media_id}")
        if not answer.is_success:
            raise WhatsAppError(answer.status_code, _error_code(answer), "media not available")
        found = answer.json()
        data = await self._exchange("GET", str(found["url"]))
        if not data.is_success:
            raise WhatsAppError(data.status_code, None, "media download failed")
        return data.content, str(found.get("mime_type") or "application/octet-stream")

    async def upload(self, filename: str, mime_type: str, data: bytes) -> str:
        """Upload a file for a document message; returns the media id."""
        answer = await self._call(
            "POST",
            "media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        return str(answer.get("id") or "")

    def _unavailable(self, response: httpx.Response, call: str) -> ServiceUnavailable | None:
        # Graph errors are told apart by `code`, not by HTTP status: throttling (130429 and
        # friends) is a refusal the delivery waits out, not WhatsApp failing (module notes).
        code = _error_code(response)
        if response.status_code >= 500 or code in TRANSIENT or response.status_code == 401:
            return WhatsAppUnavailable(f"HTTP {response.status_code}, code {code}")
        return None

    def _rejected(self, response: httpx.Response) -> ServiceError:
        error = _answer(response).get("error") or {}
        details = (error.get("error_data") or {}).get("details") or ""
        return WhatsAppError(
            response.status_code, error.get("code"), str(error.get("message") or ""), details
        )

    def _decode(self, response: httpx.Response) -> Any:
        return _answer(response)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        return {}
    return answer


def _error_code(response: httpx.Response) -> int | None:
    if response.is_success:
        return None
    try:
        code = (response.json().get("error") or {}).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


class WhatsAppDelivery:
    """The outbox's sender for WhatsApp: window, parking, uploads, error mapping."""

    def __init__(
        self,
        client: WhatsAppClient,
        state: WhatsAppState,
        metrics: Metrics,
        *,
        reply_waiting_template: str,
        salon_name: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        files: ChatwootFiles | None = None,
    ) -> None:
        # Where staff files are fetched from (Chatwoot), when there is a help desk.
        self.files = files
        self.clock = clock
        # Rate-limit refusals in a row, each doubling the next wait: a client's limits (pair
        # rate, marketing) per client and code, the number's throughput per code. This
        # delivery sends for one number (its client's phone_number_id), so a refusal for the
        # number is counted here once, whichever chat's send met it: one client's pair-rate
        # refusals must not lengthen the whole number's pause, nor one chat's count stand in
        # for the number's.
        self._refused: dict[tuple[str, int], int] = {}
        self._throttled: dict[int, int] = {}
        self.client = client
        self.state = state
        self.metrics = metrics
        self.reply_waiting_template = reply_waiting_template
        self.salon_name = salon_name

    async def deliver(self, message: Outgoing) -> None:
        try:
            try:
                await self._deliver(message)
            except FileRefused as exc:
                # A staff file that cannot go: the client is told so, in the same place.
                log.warning("a staff file could not go to WhatsApp; a text went instead")
                await self._deliver(_text_instead(message))
                raise Substituted(f"{exc}; the client got a text saying so") from exc
        except WhatsAppError as exc:
            if exc.code is not None and exc.code in RATE_LIMITS:
                # Throughput is the number's own (Meta, "Throughput"): all its chats wait.
                number_wide = exc.code in (THROUGHPUT, THROUGHPUT_UPGRADE)
                wait = self._wait(message.chat, exc.code, number_wide=number_wide)
                raise RetryLater(wait, sender_wide=number_wide) from exc
            raise PermanentFailure(str(exc)) from exc
        # Through: this client is not over its limits, nor the number over its throughput.
        for code in (PAIR_RATE, MARKETING_LIMIT):
            self._refused.pop((message.chat, code), None)
        self._throttled.clear()

    def _wait(self, chat: str, code: int, *, number_wide: bool) -> float:
        first, cap = RATE_LIMITS[code]
        if number_wide:
            refused = self._throttled.get(code, 0)
            self._throttled[code] = refused + 1
        else:
            refused = self._refused.get((chat, code), 0)
            if len(self._refused) > 10_000:
                self._refused.clear()
            self._refused[(chat, code)] = refused + 1
        return float(min(cap, first * 2**refused))

    async def _deliver(self, message: Outgoing) -> None:
        # Who spoke travels with a parked or remembered message: staff's words must not be
        # held back as the bot's when they are finally sent.
        chat, params = message.chat, message.params | {AUTHOR: message.author}
        if message.method == "read":
            await self.client.mark_read(str(params["message_id"]), typing=True)
            return
        content = params.get("content")
        if message.method not in ("messages", "template") or not isinstance(content, dict):
            raise PermanentFailure(f"unsupported WhatsApp call {message.method!r}")
        now = int(self.clock().timestamp())
        fallback = params.get("fallback")
        # A notice (confirmation, reminder), a waitlist offer or staff's proposal has an
        # approved template to go as when the window is closed: it does not wait for the
        # client to write first.
        if (
            message.method == "messages"
            and isinstance(fallback, dict)
            and not await self.state.window_open(chat, now)
            and await self._send_fallback(chat, fallback)
        ):
            return
        if message.method == "messages":
            # Outside the window it is parked instead, in the same step as the check.
            parked = await self.state.park(chat, params, now)
            if parked != "open":
                await self._notice(chat, params, owed=parked == "owed")
                return
        content = await self._with_uploads(content)
        try:
            wamid = await self.client.send(chat, content)
        except WhatsAppError as exc:
            if exc.code != OUT_OF_WINDOW or message.method != "messages":
                raise
            # Our clock and WhatsApp's disagree: WhatsApp decides.
            await self.state.close_window(chat, now)
            if isinstance(fallback, dict) and await self._send_fallback(chat, fallback):
                return
            parked = await self.state.park(chat, params, now)
            if parked == "open":
                raise RetryLater(1.0) from exc  # the client wrote meanwhile
            await self._notice(chat, params, owed=parked == "owed")
            return
        if wamid:
            await self.state.remember(wamid, chat, params, now)

    async def _send_fallback(self, chat: str, fallback: dict[str, Any]) -> bool:
        """Send the approved template standing in for a message outside the window; False
        when WhatsApp refuses it for good (the message then waits for the client)."""
        try:
            wamid = await self.client.send(chat, fallback)
        except WhatsAppError as exc:
            if exc.code in RATE_LIMITS:
                raise
            # The template is missing or refused (the operator must fix it): the message
            # waits for the client like any other instead of being lost.
            log.error("a message's template was refused: %s", exc)
            return False
        if wamid:
            await self.state.remember(wamid, chat, {"template": True}, 0)
        return True

    async def _notice(self, chat: str, params: dict[str, Any], *, owed: bool) -> None:
        """Tell the client, once, that a reply waits for them (the approved template)."""
        self.metrics.outbox.labels("whatsapp", "parked").inc()
        if not owed:
            return
        locale = str(params.get("locale") or "en")
        try:
            wamid = await self.client.send(chat, self.reply_waiting(locale))
        except WhatsAppError as exc:
            if exc.code in RATE_LIMITS:
                raise  # retried: the message stays parked once, the notice stays owed
            # A template missing or not approved: the operator must fix it; the message
            # still waits for the client.
            log.error("the reply-waiting template was refused: %s", exc)
        else:
            log.info("outside the 24-hour window: template sent, message parked")
            if wamid:
                await self.state.remember(wamid, chat, {"template": True}, 0)
        await self.state.told(chat)

    def reply_waiting(self, locale: str) -> dict[str, Any]:
        return {
            "type": "template",
            "template": {
                "name": self.reply_waiting_template,
                "language": {"policy": "deterministic", "code": locale},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": self.salon_name}]}
                ],
            },
        }

    async def _with_uploads(self, content: dict[str, Any]) -> dict[str, Any]:
        media_type = content.get("type")
        media = content.get(str(media_type)) if media_type else None
        if isinstance(media, dict) and FETCH_MARKER in media and self.files is not None:
            return await self._staff_file(media)
        if not isinstance(media, dict) or UPLOAD_MARKER not in media:
            return content
        upload = media[UPLOAD_MARKER]
        media_id = await self.client.upload(
            str(upload["filename"]), str(upload["mime_type"]), base64.b64decode(upload["base64"])
        )
        media = {k: v for k, v in media.items() if k != UPLOAD_MARKER} | {"id": media_id}
        return {**content, str(media_type): media}

    async def _staff_file(self, media: dict[str, Any]) -> dict[str, Any]:
        """A file staff attached, fetched only now (a message parked outside the window holds
        the reference, not the bytes), uploaded, and sent by its media id: Chatwoot's URL need
        not be reachable from the internet, and an upload's refusal is known at once, where a
        link that WhatsApp fails to fetch is only reported later, in a status."""
        assert self.files is not None
        file = await self.files.fetch(media[FETCH_MARKER], MEDIA_LIMITS["document"][1])
        kind = media_kind(file)
        try:
            media_id = await self.client.upload(file.name, file.mime_type, file.data)
        except WhatsAppError as exc:
            if exc.code in RATE_LIMITS:
                raise
            raise FileRefused(f"WhatsApp refused {file.name} ({exc})") from exc
        sent: dict[str, Any] = {"id": media_id}
        # Captions go with images, videos and documents; audio takes none (Meta, "Media
        # messages"): the handler sends the text of an audio file on its own.
        if media.get("caption") and kind != "audio":
            sent["caption"] = media["caption"]
        if kind == "document":
            sent["filename"] = file.name
        return {"type": kind, kind: sent}


def media_kind(file: StaffFile) -> str:
    """The message type a file goes as, or FileRefused when WhatsApp takes it as none."""
    for kind, (types, limit) in MEDIA_LIMITS.items():
        if file.mime_type in types:
            if len(file.data) > limit:
                raise FileRefused(f"{file.name} is over WhatsApp's {limit // MB} MB limit")
            return kind
    raise FileRefused(f"WhatsApp does not take {file.mime_type} files ({file.name})")


def _text_instead(message: Outgoing) -> Outgoing:
    """The text sent in place of a staff file that cannot go."""
    body = fallback_of(message.params)[:4096]
    params = {k: v for k, v in message.params.items() if k not in ("content", FALLBACK)}
    content = {"type": "text", "text": {"body": body, "preview_url": False}}
    return Outgoing(
        message.channel,
        message.chat,
        message.method,
        params | {"content": content},
        author=message.author,
    )
