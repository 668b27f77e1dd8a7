"""The Cloud API's side of the WhatsApp stand-in: sending messages, uploading and
downloading media, the number's profile, each with Meta's checks."""

from __future__ import annotations

import copy
import hmac
import logging
import secrets
import time

from aiohttp import web

from gateway.sandbox.whatsapp.notifications import Notifications
from gateway.sandbox.whatsapp.rules import (
    _META_READING,
    DISPLAY_NUMBER,
    JSON,
    MEDIA_LIMITS,
    MEDIA_TYPES,
    MESSAGE_MEDIA,
    PAIR_RATE,
    THROUGHPUT,
    WINDOW_SECONDS,
    GraphError,
    Sent,
    _accepted,
    _check_limits,
    _Client,
    _for_page,
    _invalid,
    rate_error,
)

log = logging.getLogger(__name__)


class CloudApi(Notifications):
    """The Graph API endpoints for one business number."""

    # -- the Graph API --------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.access_token}".encode()):
            raise GraphError(
                190, "Invalid OAuth access token - Cannot parse access token", status=401
            )
        if request.match_info["number"] != self.phone_number_id:
            raise GraphError(
                100, "Unsupported post request. Object does not exist", details="unknown number"
            )

    async def _messages(self, request: web.Request) -> web.Response:
        try:
            self._authorize(request)
            try:
                body = await request.json()
            except ValueError:
                raise _invalid("the body is not JSON") from None
            if not isinstance(body, dict):
                raise _invalid("the body is not a JSON object")
            if body.get("status") == "read":
                return web.json_response(self._read(body))
            return web.json_response(await self._send(body))
        except GraphError as exc:
            self.errors.append((exc.code, exc.details))
            log.info("sandbox refused a request: %s %s", exc.code, exc.details)
            return exc.response()

    def _read(self, body: JSON) -> JSON:
        unknown = set(body) - {"messaging_product", "status", "message_id", "typing_indicator"}
        if body.get("messaging_product") != "whatsapp" or unknown:
            raise _invalid(f"unexpected read receipt fields {sorted(unknown)}")
        message_id = body.get("message_id")
        if not isinstance(message_id, str) or not message_id.startswith("wamid."):
            raise _invalid("message_id must be the wamid of a message the client sent")
        typing = body.get("typing_indicator")
        if typing is not None and typing != {"type": "text"}:
            raise _invalid("typing_indicator.type must be text")
        self.reads.append(message_id)
        return {"success": True}

    async def _send(self, body: JSON) -> JSON:
        address = body.get("to") or body.get("recipient")
        if not isinstance(address, str) or not address:
            raise _invalid("to (or recipient, for a business-scoped id) is required")
        if self._spec is not None:
            checked = {k: v for k, v in body.items() if k != "recipient"} | {"to": address}
            problems = self._spec.problems(checked, {"$ref": "Message"}, _META_READING)
            if problems:
                raise _invalid("; ".join(p.describe("message") for p in problems[:5]))
        if body.get("messaging_product") != "whatsapp":
            raise _invalid("messaging_product must be whatsapp")
        kind = body.get("type")
        _check_limits(body)
        if kind == "template":
            self._check_template(body["template"])
        elif kind in ("document", "image", "audio", "video"):
            media = body[kind]
            if "id" in media and media["id"] not in self.media:
                raise GraphError(131053, "Media upload error", details="unknown media id")
            uploaded = self.media.get(str(media.get("id")))
            takes = MESSAGE_MEDIA.get(kind)
            if uploaded is not None and takes is not None and uploaded[1] not in takes:
                raise _invalid(f"a {kind} message does not take {uploaded[1]} media")
        if self._throttle:
            raise rate_error(self._throttle.pop(0))
        if self.limits is not None:
            which, _wait = self.limits.wait(address)
            if which:
                raise rate_error(THROUGHPUT if which == "sender" else PAIR_RATE)
        client = self._client_for(address)
        wamid = f"wamid.{secrets.token_urlsafe(24)}"
        in_window = client is not None and self.clock() - client.last_inbound < WINDOW_SECONDS
        if kind != "template" and not in_window:
            details = "Message failed to send because more than 24 hours have passed"
            if self.window_errors == "sync":
                raise GraphError(131047, "Re-engagement message", details=details)
            self._statuses(wamid, address, [("failed", 131047, details)])
            return _accepted(address, wamid)
        self.sent.append(Sent(wamid, address, copy.deepcopy(body), time.monotonic()))
        self.history.append((client.key if client else address, "business", _for_page(body)))
        if self.auto_statuses:
            self._statuses(wamid, address, [("sent", 0, ""), ("delivered", 0, "")])
        return _accepted(address, wamid)

    def _check_template(self, template: JSON) -> None:
        name = str(template.get("name", ""))
        language = str((template.get("language") or {}).get("code", ""))
        wanted = self.templates.get((name, language))
        if wanted is None:
            raise GraphError(
                132001,
                "Template name does not exist in the translation",
                details=f"template name ({name}) does not exist in {language}",
            )
        given = sum(
            len(component.get("parameters", []))
            for component in template.get("components", [])
            if component.get("type") == "body"
        )
        if given != wanted:
            raise GraphError(
                132000,
                "Number of parameters does not match the expected number of params",
                details=f"body: number of localizable_params ({given}) does not match the "
                f"expected number of params ({wanted})",
            )

    async def _number(self, request: web.Request) -> web.Response:
        """The business number's profile (what `frontdesk check` reads), or a client's media
        (`GET /{media_id}`: where to download it)."""
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.access_token}".encode()):
            return GraphError(190, "Invalid OAuth access token", status=401).response()
        media_id = request.match_info["number"]
        if media_id in self.client_media:
            _name, mime_type, data = self.client_media[media_id]
            base = f"{request.scheme}://{request.host}"
            return web.json_response(
                {
                    "url": f"{base}/_media/{media_id}",
                    "mime_type": mime_type,
                    "file_size": len(data),
                    "id": media_id,
                    "messaging_product": "whatsapp",
                }
            )
        if media_id != self.phone_number_id:
            return _invalid(f"object {media_id} does not exist").response()
        return web.json_response(
            {
                "display_phone_number": f"+{DISPLAY_NUMBER}",
                "verified_name": "Frontdesk Demo Salon",
                "id": self.phone_number_id,
            }
        )

    async def _media_download(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.access_token}".encode()):
            return web.Response(status=401)
        found = self.client_media.get(request.match_info["id"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[2], content_type=found[1])

    async def _upload(self, request: web.Request) -> web.Response:
        try:
            self._authorize(request)
            form = await request.post()
            file = form.get("file")
            if form.get("messaging_product") != "whatsapp" or not isinstance(file, web.FileField):
                raise _invalid("messaging_product=whatsapp and a file are required")
            # `type` is required: "Type of media file being uploaded" (Meta, "Upload media").
            if not isinstance(form.get("type"), str) or not form.get("type"):
                raise _invalid("type is required: the uploaded file's MIME type")
            if file.content_type not in MEDIA_TYPES:
                raise GraphError(
                    131053,
                    "Media upload error",
                    details=f"Unsupported file type: {file.content_type}",
                )
            data = file.file.read()
            limit = MEDIA_LIMITS.get(
                file.content_type, MEDIA_LIMITS[file.content_type.split("/")[0]]
            )
            if len(data) > limit:
                raise GraphError(
                    131053, "Media upload error", details=f"file is over {limit // 1024} KB"
                )
            media_id = str(next(self._ids) + 900_000_000)
            self.media[media_id] = (file.filename, file.content_type, data)
            return web.json_response({"id": media_id})
        except GraphError as exc:
            self.errors.append((exc.code, exc.details))
            return exc.response()

    def _client_for(self, address: str) -> _Client | None:
        return next(
            (c for c in self._clients.values() if address in (c.wa_id, c.bsuid)),
            None,
        )
