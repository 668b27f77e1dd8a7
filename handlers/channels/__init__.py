"""One adapter per messenger channel, looked up by `Channel` (`ADAPTERS[Channel.TELEGRAM]`)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.events import Channel
from handlers.channels.base import CAPTION_MAX, ChannelAdapter, Rendered
from handlers.channels.telegram import TelegramChannel
from handlers.channels.whatsapp import WhatsAppChannel

TELEGRAM = TelegramChannel()
WHATSAPP = WhatsAppChannel()
ADAPTERS: Mapping[Channel, ChannelAdapter] = {
    Channel.TELEGRAM: TELEGRAM,
    Channel.WHATSAPP: WHATSAPP,
}


def adapter_for(conv_channel: str) -> ChannelAdapter:
    """The adapter of a conversation's channel (`Conversation.channel`, a `Channel`'s value)."""
    return ADAPTERS[Channel(conv_channel)]


__all__ = [
    "ADAPTERS",
    "CAPTION_MAX",
    "TELEGRAM",
    "WHATSAPP",
    "ChannelAdapter",
    "Rendered",
    "adapter_for",
]
