"""One adapter per channel: the conversation key, the bot's replies, staff's words and files."""

from __future__ import annotations

import pytest

from bot.events import Channel
from bot.i18n import Catalogs
from bot.replies import Choice, Reply
from gateway.integrations.chatwoot.files import FALLBACK, FETCH_MARKER
from gateway.pipeline import Author, Conversation
from handlers.channels import ADAPTERS, CAPTION_MAX, TELEGRAM, WHATSAPP, adapter_for

REPORT = {"conversation": 7, "message": 9}
IMAGE = {"kind": "image", "name": "a.png"}
AUDIO = {"kind": "audio", "name": "a.ogg"}


def test_every_channel_has_its_adapter_and_its_conversation_key() -> None:
    assert set(ADAPTERS) == set(Channel)
    assert adapter_for("telegram") is TELEGRAM
    assert adapter_for("whatsapp") is WHATSAPP
    assert TELEGRAM.key("-1001") == "tg:-1001"
    assert WHATSAPP.key("79161234567") == "wa:79161234567"
    for adapter in ADAPTERS.values():
        conv = adapter.conversation("42")
        assert Conversation.from_key(conv.key) == conv
        assert conv.channel == adapter.channel


def test_keys_that_are_not_ours_name_no_conversation() -> None:
    assert Conversation.from_key("tg:update:5") is None
    assert Conversation.from_key("cw:5") is None
    assert Conversation.from_key("wa:") is None


def test_staff_text_on_each_channel() -> None:
    text = TELEGRAM.staff_text("42", "x" * 5000, "en", REPORT)
    assert (text.channel, text.method, text.author) == ("telegram", "sendMessage", Author.STAFF)
    assert text.params == {"chat_id": 42, "text": "x" * 4096, "_desk": REPORT}
    text = WHATSAPP.staff_text("7916", "Hello", "ru", REPORT)
    assert (text.channel, text.method, text.author) == ("whatsapp", "messages", Author.STAFF)
    assert text.params == {
        "content": {"type": "text", "text": {"body": "Hello", "preview_url": False}},
        "locale": "ru",
        "_desk": REPORT,
    }


@pytest.mark.parametrize(
    ("ref", "field", "method"),
    [(IMAGE, "photo", "sendPhoto"), (AUDIO, "document", "sendDocument")],
)
def test_staff_files_on_telegram(ref: dict[str, str], field: str, method: str) -> None:
    sent = TELEGRAM.staff_file("42", ref, "see", "gone", "en", REPORT)
    assert sent.method == method
    assert sent.params == {
        "chat_id": 42,
        field: {FETCH_MARKER: ref},
        "caption": "see",
        FALLBACK: "gone",
        "_desk": REPORT,
    }
    assert "caption" not in TELEGRAM.staff_file("42", ref, "", "gone", "en", REPORT).params


def test_staff_files_on_whatsapp() -> None:
    sent = WHATSAPP.staff_file("7916", IMAGE, "see", "gone", "en", REPORT)
    assert sent.params["content"] == {
        "type": "image",
        "image": {FETCH_MARKER: IMAGE, "caption": "see"},
    }
    bare = WHATSAPP.staff_file("7916", AUDIO, "", "gone", "en", REPORT)
    assert bare.params["content"] == {"type": "document", "document": {FETCH_MARKER: AUDIO}}
    assert bare.params[FALLBACK] == "gone"


def test_captions_fit_the_channel() -> None:
    assert TELEGRAM.takes_caption("x" * CAPTION_MAX, AUDIO)
    assert not TELEGRAM.takes_caption("x" * (CAPTION_MAX + 1), IMAGE)
    assert WHATSAPP.takes_caption("x" * CAPTION_MAX, IMAGE)
    # A WhatsApp audio message takes no caption.
    assert not WHATSAPP.takes_caption("hi", AUDIO)


def test_replies_outside_a_turn() -> None:
    _ = Catalogs().get("en")
    replies = (Reply("Pick", (Choice("a", "A"), Choice("b", "B"))),)
    telegram = TELEGRAM.replies("42", replies, _)
    assert [o.method for o in telegram.outgoing] == ["sendMessage"]
    assert (telegram.numbered, telegram.receipts) == (None, ())
    whatsapp = WHATSAPP.replies("7916", replies, _)
    assert [o.method for o in whatsapp.outgoing] == ["messages"]
    assert (whatsapp.numbered, whatsapp.receipts) == (False, ())
    answer = WHATSAPP.answer("7916", replies, _, read="wamid.1")
    assert [o.method for o in answer.receipts] == ["read"]
    assert answer.outgoing == whatsapp.outgoing
    assert not TELEGRAM.service_window
    assert WHATSAPP.service_window
