"""Files staff attach in Chatwoot reach the client as what they are, through the real gateway:
the Chatwoot sandbox's webhook, the outbox's delivery (which downloads the file the way the real
Chatwoot serves it: a public blob redirect, then the storage), and the messenger sandbox, which
records what was uploaded.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.sandbox.telegram import SentCall
from gateway.sandbox.whatsapp import WhatsAppSandbox
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import Chat, Salon
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import Desk, start_desk, texts
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_whatsapp import Phone, text_of
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 40
PDF = b"%PDF-1.7\n" + b"price list " * 500
MB = 1024 * 1024


async def handed_over(
    start_gateway: GatewayFactory, salon: Salon, desk: Desk, sandbox: Sandbox, chat_id: int
) -> tuple[Any, Chat, int]:
    """A Telegram client whose conversation is in Chatwoot (the bot mirrors it)."""
    desk.chatwoot.url = desk.url
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, chat_id)
    await chat.say("/start")
    thread = await eventually(lambda: desk.chatwoot.conversation_for(f"tg:{chat_id}"))
    return gateway, chat, thread.id


def calls(sandbox: Sandbox, method: str) -> list[SentCall]:
    return [call for call in sandbox.telegram.sent if call.method == method]


async def test_a_photo_from_staff_arrives_in_telegram_as_a_photo(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    _gateway, chat, thread = await handed_over(start_gateway, salon, desk, sandbox, 801)
    reply = desk.chatwoot.agent_sends_files(
        thread, "Your new look!", [("nails.jpg", "image/jpeg", JPEG)]
    )
    [sent] = await eventually(lambda: calls(sandbox, "sendPhoto"))
    upload = sent.params["photo"]
    assert (upload.filename, upload.content_type, upload.data) == ("nails.jpg", "image/jpeg", JPEG)
    assert sent.params["caption"] == "Your new look!"
    assert chat.messages[-1]["photo"][0]["file_size"] == len(JPEG)
    assert chat.messages[-1]["caption"] == "Your new look!"
    await eventually(lambda: (reply["id"], "sent") in desk.chatwoot.updates)
    # Downloaded as Chatwoot serves it: the blob redirect, then the storage; no token sent to
    # either (none is needed, and the storage may be another host).
    blob, disk = desk.chatwoot.downloads
    assert (blob[1], disk[1]) == (302, 200)
    assert "/rails/active_storage/disk/" in disk[0]
    assert not blob[2]
    assert not disk[2]
    assert texts(chat).count("Your new look!") == 1  # the words ride with the photo, once


async def test_a_document_from_staff_arrives_in_telegram_as_a_document(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    _gateway, chat, thread = await handed_over(start_gateway, salon, desk, sandbox, 802)
    words = "Here is our price list. " * 50  # too long for a caption: it goes first
    desk.chatwoot.agent_sends_files(
        thread,
        words,
        [("price list.pdf", "application/pdf", PDF), ("big.png", "image/png", b"not an image")],
    )
    [document] = await eventually(lambda: calls(sandbox, "sendDocument")[:1] or None)
    upload = document.params["document"]
    assert (upload.filename, upload.content_type, upload.data) == (
        "price list.pdf",
        "application/pdf",
        PDF,
    )
    assert "caption" not in document.params
    assert words.strip() in texts(chat)
    # An "image" Telegram cannot process as a photo is refused as one (nothing sent), and goes
    # as a document instead.
    second = await eventually(lambda: calls(sandbox, "sendDocument")[1:] or None)
    assert second[0].params["document"].filename == "big.png"
    assert ("sendPhoto", 400, "Bad Request: IMAGE_PROCESS_FAILED") in sandbox.telegram.errors
    assert texts(chat).count(words.strip()) == 1


async def test_a_photo_over_telegrams_photo_limit_goes_as_a_document(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    _gateway, _chat, thread = await handed_over(start_gateway, salon, desk, sandbox, 803)
    large = JPEG + b"\x00" * (10 * MB)
    desk.chatwoot.agent_sends_files(thread, "Full size", [("poster.jpg", "image/jpeg", large)])
    [document] = await eventually(lambda: calls(sandbox, "sendDocument"), timeout=10)
    assert document.params["document"].data == large
    assert document.params["caption"] == "Full size"
    assert calls(sandbox, "sendPhoto") == []


async def test_a_file_too_big_or_gone_gets_a_text_that_says_so(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    _gateway, chat, thread = await handed_over(start_gateway, salon, desk, sandbox, 804)
    # Over Telegram's 50 MB: known from the webhook's file_size, never downloaded.
    huge = b"\x00" * (51 * MB)
    reply = desk.chatwoot.agent_sends_files(thread, "The video", [("salon.mp4", "video/mp4", huge)])
    told = await eventually(lambda: [t for t in texts(chat) if "could not be delivered" in t])
    assert told == [
        "The video\n\n📎 The salon sent a file that could not be delivered here: salon.mp4 "
        "(51 MB). The salon has been notified."
    ]
    assert desk.chatwoot.downloads == []
    await eventually(lambda: (reply["id"], "failed") in desk.chatwoot.updates)
    [failed] = [m for m in desk.thread("tg:804").messages if m["id"] == reply["id"]]
    assert "over the 50 MB limit" in failed["content_attributes"]["external_error"]

    # Deleted in Chatwoot before it could be fetched: 404, not retried; the client is told.
    before = len(texts(chat))
    late = desk.chatwoot.agent_sends_files(thread, "", [("menu.pdf", "application/pdf", PDF)])
    desk.chatwoot.forget_file(late["attachments"][0]["id"])
    await eventually(lambda: len(texts(chat)) > before)
    assert texts(chat)[before:] == [
        "📎 The salon sent a file that could not be delivered here: menu.pdf (5 KB). "
        "The salon has been notified."
    ]
    await eventually(lambda: (late["id"], "failed") in desk.chatwoot.updates)
    assert [d[1] for d in desk.chatwoot.downloads] == [404]
    assert calls(sandbox, "sendDocument") == []

    # Refused by Telegram itself (a 4xx): nothing was sent, so the text goes instead.
    sandbox.telegram.fail_next("sendDocument", error_code=400, description="Bad Request: x")
    before = len(texts(chat))
    desk.chatwoot.agent_sends_files(thread, "Menu", [("menu.pdf", "application/pdf", PDF)])
    await eventually(lambda: len(texts(chat)) > before)
    assert texts(chat)[before:] == [
        "Menu\n\n📎 The salon sent a file that could not be delivered here: menu.pdf (5 KB). "
        "The salon has been notified."
    ]


async def test_a_retried_file_is_sent_once(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each file is a message of its own in the outbox: a storage outage and a Telegram 5xx are
    retried, and nothing (the words, the other file) goes twice. The retries' log lines leave
    the files' names out (a name is often the client's: "Ivanova_passport.jpg")."""
    gateway, chat, thread = await handed_over(start_gateway, salon, desk, sandbox, 805)
    desk.chatwoot.file_failures = [302, 503]  # the second download meets a storage outage
    sandbox.telegram.fail_next("sendDocument", error_code=500, description="Internal Error")
    words = "Two files for you. " * 60
    desk.chatwoot.agent_sends_files(
        thread,
        words,
        [("a.pdf", "application/pdf", PDF), ("b.jpg", "image/jpeg", JPEG)],
    )
    await eventually(lambda: calls(sandbox, "sendPhoto"), timeout=10)
    assert [c.params["document"].filename for c in calls(sandbox, "sendDocument")] == ["a.pdf"]
    assert [c.params["photo"].data for c in calls(sandbox, "sendPhoto")] == [JPEG]
    assert texts(chat).count(words.strip()) == 1
    statuses = [status for _path, status, _token in desk.chatwoot.downloads]
    assert 503 in statuses

    # Fetched before Active Storage finished storing it (the webhook comes at the commit, the
    # upload after it): the storage's 404 behind a valid redirect is tried again, not final.
    before = len(calls(sandbox, "sendPhoto"))
    message = desk.chatwoot.agent_sends_files(thread, "", [("c.jpg", "image/jpeg", JPEG)])
    desk.chatwoot.storing[message["attachments"][0]["id"]] = 1
    await eventually(lambda: calls(sandbox, "sendPhoto")[before:])
    assert [c.params["photo"].filename for c in calls(sandbox, "sendPhoto")] == ["b.jpg", "c.jpg"]
    disk = [s for path, s, _t in desk.chatwoot.downloads if "/disk/" in path]
    assert disk[-2:] == [404, 200]
    assert not any("could not be delivered" in t for t in texts(chat))
    metrics = await (await gateway.http.get(f"{gateway.url}/metrics")).text()
    assert 'frontdesk_outbox_retries_total{channel="telegram"}' in metrics
    retried = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retried
    assert not any(name in line for line in retried for name in ("a.pdf", "b.jpg", "c.jpg"))


async def test_staff_files_reach_whatsapp_by_uploaded_media_id(
    start_gateway: GatewayFactory, salon: Salon, desk: Desk, wa: WhatsAppSandbox
) -> None:
    desk.chatwoot.url = desk.url
    await start_desk(start_gateway, salon, desk, wa)
    phone = Phone(wa)
    await phone.say("Hello")
    thread = await eventually(lambda: desk.chatwoot.conversation_for(f"wa:{phone.key}"))
    before = len(phone.received)
    reply = desk.chatwoot.agent_sends_files(
        thread.id,
        "Before and after",
        [("nails.jpg", "image/jpeg", JPEG), ("price list.pdf", "application/pdf", PDF)],
    )
    await eventually(lambda: len(phone.received) >= before + 2)
    image, document = phone.received[before:]
    assert image.body["type"] == "image"
    assert image.body["image"]["caption"] == "Before and after"
    assert wa.media[image.body["image"]["id"]] == ("nails.jpg", "image/jpeg", JPEG)
    assert document.body["type"] == "document"
    assert document.body["document"]["filename"] == "price list.pdf"
    assert wa.media[document.body["document"]["id"]][1:] == ("application/pdf", PDF)
    await eventually(lambda: (reply["id"], "sent") in desk.chatwoot.updates)

    # WhatsApp takes images of 5 MB at most and no GIFs: the client is told instead.
    before = len(phone.received)
    large = JPEG + b"\x00" * (5 * MB)
    desk.chatwoot.agent_sends_files(thread.id, "", [("poster.jpg", "image/jpeg", large)])
    told = await eventually(lambda: phone.received[before:])
    assert text_of(told[0]) == (
        "📎 The salon sent a file that could not be delivered here: poster.jpg (5 MB). "
        "The salon has been notified."
    )
    assert len(wa.media) == 2
    assert wa.errors == []
    assert desk.chatwoot.errors == []
