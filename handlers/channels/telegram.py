"""Telegram as a channel: the `tg:` conversation, the bot's replies as Bot API calls with
inline keyboards, and staff's words and files as Bot API calls."""

from __future__ import annotations

import base64
from typing import Any

from bot.events import Channel
from bot.i18n import Translator
from bot.replies import Reply
from gateway.integrations.chatwoot.files import FALLBACK, FETCH_MARKER
from gateway.integrations.telegram.api import UPLOAD_MARKER
from gateway.pipeline import Author, Outgoing
from handlers.channels.base import CAPTION_MAX, STAFF_TEXT_MAX, Keyed, Rendered

SOURCE = Channel.TELEGRAM.value


class TelegramChannel(Keyed):
    channel = Channel.TELEGRAM
    service_window = False

    def replies(self, chat: str, replies: tuple[Reply, ...], _: Translator) -> Rendered:
        return Rendered(tuple(render(chat, replies, None)))

    def takes_caption(self, text: str, ref: dict[str, Any]) -> bool:
        return len(text) <= CAPTION_MAX

    def staff_text(self, chat: str, text: str, locale: str, report: dict[str, Any]) -> Outgoing:
        params: dict[str, Any] = {"chat_id": int(chat), "text": text[:STAFF_TEXT_MAX]}
        return Outgoing(
            SOURCE, chat, "sendMessage", params | {"_desk": report}, author=Author.STAFF
        )

    def staff_file(
        self,
        chat: str,
        ref: dict[str, Any],
        caption: str,
        fallback: str,
        locale: str,
        report: dict[str, Any],
    ) -> Outgoing:
        # A picture as a photo, anything else as a document.
        field, method = (
            ("photo", "sendPhoto") if ref["kind"] == "image" else ("document", "sendDocument")
        )
        params: dict[str, Any] = {"chat_id": int(chat), field: {FETCH_MARKER: ref}}
        if caption:
            params["caption"] = caption
        params |= {FALLBACK: fallback, "_desk": report}
        return Outgoing(SOURCE, chat, method, params, author=Author.STAFF)


def render(
    chat_id: str, replies: tuple[Reply, ...], callback_query_id: str | None
) -> list[Outgoing]:
    """Replies as Bot API calls. A tap is always acknowledged first, so its spinner stops."""
    outgoing: list[Outgoing] = []
    if callback_query_id is not None:
        outgoing.append(
            Outgoing(
                SOURCE,
                chat_id,
                "answerCallbackQuery",
                {"callback_query_id": callback_query_id},
                ephemeral=True,
            )
        )
    for reply in replies:
        outgoing.append(_message(chat_id, reply))
    return outgoing


def _message(chat_id: str, reply: Reply) -> Outgoing:
    params: dict[str, Any] = {"chat_id": int(chat_id)}
    markup = _markup(reply)
    if markup is not None:
        params["reply_markup"] = markup
    if reply.document is not None:
        document = reply.document
        params["caption"] = reply.text
        # The outbox keeps JSON; the delivery turns this into the multipart upload.
        params["document"] = {
            UPLOAD_MARKER: True,
            "filename": document.filename,
            "mime_type": document.mime_type,
            "base64": base64.b64encode(document.content).decode(),
        }
        return Outgoing(SOURCE, chat_id, "sendDocument", params)
    params["text"] = reply.text
    return Outgoing(SOURCE, chat_id, "sendMessage", params)


def _markup(reply: Reply) -> dict[str, Any] | None:
    if reply.request_contact:
        # A keyboard under the input field: its first button shares the client's own number in
        # one tap; the others send their label as text, which the bot reads as that choice.
        first, *rest = reply.choices or (None,)
        buttons: list[dict[str, Any]] = []
        if first is not None:
            buttons.append({"text": first.label, "request_contact": True})
        buttons += [{"text": choice.label} for choice in rest]
        return {
            "keyboard": [[button] for button in buttons],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }
    if reply.clear_keyboard:
        return {"remove_keyboard": True}
    if reply.choices:
        columns = max(1, reply.columns)
        buttons = [{"text": c.label, "callback_data": c.id} for c in reply.choices]
        rows = [buttons[i : i + columns] for i in range(0, len(buttons), columns)]
        return {"inline_keyboard": rows}
    return None
