"""What a messenger channel does for the handlers: its conversation key, the bot's replies as
its messages, and staff's words and files as its messages. One adapter per channel
(`handlers/channels/telegram.py`, `whatsapp.py`), looked up by `Channel` in `ADAPTERS`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.events import Channel
from bot.i18n import Translator
from bot.replies import Reply
from gateway.pipeline import Conversation, Outgoing

# A caption's limit: Telegram's "0-1024 characters after entities parsing" (sendPhoto,
# sendDocument in telegram-bot-api.json); WhatsApp's media caption is as long at most (Meta,
# "Media messages").
CAPTION_MAX = 1024
# Staff's text in one message: Telegram's sendMessage takes "1-4096 characters after entities
# parsing" (telegram-bot-api.json), a WhatsApp text body as many
# (contracts/chatwoot-whatsapp-telegram.md, WhatsApp "Text").
STAFF_TEXT_MAX = 4096


@dataclass(frozen=True, slots=True)
class Rendered:
    """The bot's replies as one channel's messages."""

    outgoing: tuple[Outgoing, ...]
    # Whether the last choices went out as numbered text (a typed number then picks one);
    # None where the channel never numbers them, and the session keeps what it had.
    numbered: bool | None = None
    # Sent first and not part of the answer (WhatsApp's read receipt): never marked as the
    # handoff's, and ahead of what waited for the client.
    receipts: tuple[Outgoing, ...] = ()


class Keyed:
    """The conversation and key of a channel's chat: the same for every adapter, from the one
    spelling of `tg:`/`wa:` in `gateway.pipeline.Conversation`."""

    channel: Channel

    def conversation(self, chat: str) -> Conversation:
        return Conversation(self.channel.value, chat)

    def key(self, chat: str) -> str:
        return self.conversation(chat).key


class ChannelAdapter(Protocol):
    channel: Channel
    # Whether a message outside the client's 24-hour window needs an approved template
    # (WhatsApp's customer service window; contracts/chatwoot-whatsapp-telegram.md).
    service_window: bool

    def conversation(self, chat: str) -> Conversation:
        """The client's conversation on this channel."""
        ...

    def key(self, chat: str) -> str:
        """The conversation key the edge queues a chat's events under."""
        ...

    def replies(self, chat: str, replies: tuple[Reply, ...], _: Translator) -> Rendered:
        """The bot's replies, said outside a client's own turn (a hand-back, a notice)."""
        ...

    def takes_caption(self, text: str, ref: dict[str, Any]) -> bool:
        """Whether staff's words can ride with this file as its caption."""
        ...

    def staff_text(self, chat: str, text: str, locale: str, report: dict[str, Any]) -> Outgoing:
        """Staff's words to the client; `report`: where the delivery is reported in Chatwoot."""
        ...

    def staff_file(
        self,
        chat: str,
        ref: dict[str, Any],
        caption: str,
        fallback: str,
        locale: str,
        report: dict[str, Any],
    ) -> Outgoing:
        """Staff's attachment, one message of its own (a retry never repeats another): only
        a reference here; the delivery fetches the file from Chatwoot and sends it
        (gateway/integrations/chatwoot/files.py), or `fallback` should it not reach them."""
        ...
