"""A client's conversation and its key: the one place the `tg:` / `wa:` spelling lives.

The key names the conversation everywhere a client's events meet: the stream entry (a client's
events are handled in order under it), the Chatwoot conversation's `source_id` (Chatwoot's
webhooks carry it back), the Novu subscriber id and the booking links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.events import Channel

# The key's prefix per channel, and the way back.
PREFIXES = {Channel.TELEGRAM: "tg", Channel.WHATSAPP: "wa"}
_CHANNELS = {prefix: channel for channel, prefix in PREFIXES.items()}

# A Telegram chat id is an Integer (Bot API, "Chat"); a WhatsApp client is their WhatsApp id
# (digits) or their business-scoped id, `CC.<up to 128 alphanumerics>` or `CC.ENT.<...>` (Meta,
# "Business-scoped user IDs"; contracts/chatwoot-whatsapp-telegram.md §2.10).
_CHAT = {
    Channel.TELEGRAM: re.compile(r"-?[0-9]{1,20}"),
    Channel.WHATSAPP: re.compile(r"[A-Za-z0-9._-]{1,140}"),
}


def key_of(channel: str, chat: str) -> str:
    """The conversation key of a chat on a channel (unchecked: see `Conversation.from_key`)."""
    return f"{PREFIXES[Channel(channel)]}:{chat}"


@dataclass(frozen=True, slots=True)
class Conversation:
    channel: str  # "telegram" | "whatsapp" (a `Channel`'s value)
    chat: str

    @property
    def key(self) -> str:
        """The client's conversation key: also the Chatwoot `source_id`."""
        return key_of(self.channel, self.chat)

    @classmethod
    def from_key(cls, key: str) -> Conversation | None:
        """The conversation a key names; None for anything that is not one of ours (a key
        from a webhook is checked here before it is trusted)."""
        prefix, _, chat = key.partition(":")
        channel = _CHANNELS.get(prefix)
        if channel is None or _CHAT[channel].fullmatch(chat) is None:
            return None
        return cls(channel.value, chat)
