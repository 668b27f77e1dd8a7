"""WhatsApp as a channel: the `wa:` conversation, the bot's replies as Cloud API messages
(handlers/whatsapp_render.py keeps them within WhatsApp's limits), and staff's words and files
as Cloud API messages."""

from __future__ import annotations

from typing import Any

from bot.events import Channel
from bot.i18n import Translator
from bot.replies import Reply
from gateway.integrations.chatwoot.files import FALLBACK, FETCH_MARKER
from gateway.pipeline import Author, Outgoing
from handlers import whatsapp_render
from handlers.channels.base import CAPTION_MAX, STAFF_TEXT_MAX, Keyed, Rendered

SOURCE = Channel.WHATSAPP.value


class WhatsAppChannel(Keyed):
    channel = Channel.WHATSAPP
    service_window = True

    def replies(self, chat: str, replies: tuple[Reply, ...], _: Translator) -> Rendered:
        return self.answer(chat, replies, _)

    def answer(
        self, chat: str, replies: tuple[Reply, ...], _: Translator, read: str | None = None
    ) -> Rendered:
        """The bot's replies; `read`: the client's message to mark read first (blue ticks)."""
        rendered = whatsapp_render.render(chat, replies, _, read=read)
        receipts = tuple(o for o in rendered.outgoing if o.method == "read")
        outgoing = tuple(o for o in rendered.outgoing if o.method != "read")
        return Rendered(outgoing, rendered.numbered, receipts)

    def takes_caption(self, text: str, ref: dict[str, Any]) -> bool:
        # An audio message takes no caption (Meta, "Media messages").
        return len(text) <= CAPTION_MAX and ref["kind"] != "audio"

    def staff_text(self, chat: str, text: str, locale: str, report: dict[str, Any]) -> Outgoing:
        content = {"type": "text", "text": {"body": text[:STAFF_TEXT_MAX], "preview_url": False}}
        params = {"content": content, "locale": locale, "_desk": report}
        return Outgoing(SOURCE, chat, "messages", params, author=Author.STAFF)

    def staff_file(
        self,
        chat: str,
        ref: dict[str, Any],
        caption: str,
        fallback: str,
        locale: str,
        report: dict[str, Any],
    ) -> Outgoing:
        # A picture as an image, anything else as a document.
        media = "image" if ref["kind"] == "image" else "document"
        fetch = {FETCH_MARKER: ref}
        content = {"type": media, media: fetch | ({"caption": caption} if caption else {})}
        params = {"content": content, "locale": locale, FALLBACK: fallback, "_desk": report}
        return Outgoing(SOURCE, chat, "messages", params, author=Author.STAFF)
