"""The Telegram sandbox answers like the Bot API and delivers updates like Telegram."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.sandbox.telegram import SECRET_HEADER, TelegramSandbox

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "contracts" / "telegram-bot-api.json"
CHAT = 4242

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]


def keyboard(*data: str) -> InlineKeyboardMarkup:
    buttons = [[InlineKeyboardButton(text=d.upper(), callback_data=d)] for d in data]
    return InlineKeyboardMarkup(inline_keyboard=buttons)


@pytest.fixture
def spec() -> Path:
    if not SPEC.is_file():
        pytest.skip(f"needs the vendor Bot API spec at ../shared/contracts/{SPEC.name} (absent)")
    return SPEC


@pytest.fixture
def sandbox() -> TelegramSandbox:
    return TelegramSandbox(TOKEN, SPEC if SPEC.is_file() else None, redelivery_backoff=0.01)


@pytest.fixture
async def client(sandbox: TelegramSandbox, aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    # No access log: every Bot API URL carries the token.
    return await aiohttp_client(sandbox.app(), server_kwargs={"access_log": None})


@pytest.fixture
async def bot(client: TestClient[Any, Any]) -> AsyncIterator[Bot]:
    base = str(client.make_url("/"))
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    yield bot
    await bot.session.close()


class Webhook:
    """A tiny bot webhook: answers with the queued statuses (then 200) and keeps what it got."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, Any], str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), request.headers.get(SECRET_HEADER)))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({}, status=status)


@pytest.fixture
async def webhook_url(aiohttp_server: ServerFactory) -> Callable[[Webhook], Awaitable[str]]:
    async def start(hook: Webhook) -> str:
        app = web.Application()
        app.router.add_post("/tg/webhook", hook.handle)
        server = await aiohttp_server(app)
        return str(server.make_url("/tg/webhook"))

    return start


async def test_aiogram_talks_to_the_sandbox(bot: Bot, sandbox: TelegramSandbox) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "frontdesk_sandbox_bot")

    first = await bot.send_message(CHAT, "Pick a time", reply_markup=keyboard("slot:1", "slot:2"))
    second = await bot.send_message(CHAT, "Or write to us")
    assert (first.message_id, second.message_id) == (1, 2)
    assert (first.chat.id, first.chat.type) == (CHAT, "private")
    assert first.from_user is not None
    assert first.from_user.id == me.id
    assert isinstance(first.reply_markup, InlineKeyboardMarkup)
    rows = first.reply_markup.inline_keyboard
    assert [row[0].callback_data for row in rows] == ["slot:1", "slot:2"]

    call = sandbox.sent[-2]
    assert call.method == "sendMessage"
    assert call.params["chat_id"] == CHAT  # form values decoded to their spec types
    assert call.params["reply_markup"]["inline_keyboard"][1][0]["callback_data"] == "slot:2"
    texts = [m["text"] for m in sandbox.messages_for(CHAT)]
    assert texts == ["Pick a time", "Or write to us"]
    assert sandbox.messages_for(CHAT + 1) == []


async def test_edits_apply_and_unchanged_edits_are_refused(
    bot: Bot, sandbox: TelegramSandbox
) -> None:
    sent = await bot.send_message(CHAT, "Pick a time", reply_markup=keyboard("slot:1"))
    await bot.edit_message_text("Booked for 10:00", chat_id=CHAT, message_id=sent.message_id)
    [message] = sandbox.messages_for(CHAT)
    assert message["text"] == "Booked for 10:00"
    assert "reply_markup" not in message  # an edit without reply_markup drops the keyboard
    assert "edit_date" in message
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Booked for 10:00", chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_reply_markup(chat_id=CHAT, message_id=99, reply_markup=keyboard("x"))


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot, sandbox: TelegramSandbox) -> None:
    await bot.send_message(CHAT, "ok", reply_markup=keyboard("я" * 32))  # exactly 64 bytes
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "too long", reply_markup=keyboard("я" * 32 + "x"))
    assert sandbox.errors[-1][:2] == ("sendMessage", 400)
    assert len(sandbox.messages_for(CHAT)) == 1


async def test_text_limits_hold_without_the_spec(aiohttp_client: ClientFactory) -> None:
    sandbox = TelegramSandbox(TOKEN)
    client = await aiohttp_client(sandbox.app(), server_kwargs={"access_log": None})
    for text, description in [("", "message text is empty"), ("x" * 4097, "message is too long")]:
        response = await client.post(
            f"/bot{TOKEN}/sendMessage", data={"chat_id": "1", "text": text}
        )
        body = await response.json()
        assert (response.status, body["description"]) == (400, f"Bad Request: {description}")
    response = await client.post(
        f"/bot{TOKEN}/sendMessage", data={"chat_id": "1", "text": "x" * 4096}
    )
    assert response.status == 200


async def test_wrong_token_and_unknown_method(client: TestClient[Any, Any]) -> None:
    response = await client.post("/bot123456:wrong-token/getMe")
    assert response.status == 401
    assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    response = await client.post(f"/bot{TOKEN}/bookAHaircut")
    assert response.status == 404
    assert (await response.json())["description"] == "Not Found: method not found"

    bad = Bot(
        "654321:TEST-token-abcdefghijklmnopqrstuvw",
        session=AiohttpSession(api=TelegramAPIServer.from_base(str(client.make_url("/")))),
    )
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bad.get_me()
    finally:
        await bad.session.close()


async def test_the_spec_checks_every_field(spec: Path, client: TestClient[Any, Any]) -> None:
    url = f"/bot{TOKEN}/sendMessage"
    cases = [
        ({"text": "hi"}, "Bad Request: chat_id is required"),
        ({"chat_id": 1}, "Bad Request: message text is empty"),
        ({"chat_id": 1, "text": "hi", "colour": "red"}, "Bad Request: unknown parameter colour"),
        ({"chat_id": 1, "text": "hi", "disable_notification": "yes"}, "can't parse"),
        ({"chat_id": 1, "text": "hi", "reply_markup": {"inline_keyboard": [[{}]]}}, "can't parse"),
    ]
    for params, description in cases:
        response = await client.post(url, json=params)
        body = await response.json()
        assert response.status == 400, params
        assert body["ok"] is False
        assert description in body["description"]
    response = await client.post(
        url, data={"chat_id": "7", "text": "hi", "protect_content": "true"}
    )
    assert response.status == 200  # urlencoded values are decoded by their spec types


async def test_fail_next_429_carries_retry_after(bot: Bot, sandbox: TelegramSandbox) -> None:
    sandbox.fail_next(
        "sendMessage",
        error_code=429,
        description="Too Many Requests: retry after 7",
        retry_after=7,
        times=2,
    )
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(CHAT, "hello")
        assert caught.value.retry_after == 7
    await bot.send_message(CHAT, "hello")
    assert [call.method for call in sandbox.sent] == ["sendMessage"]


async def test_webhook_gets_signed_updates_and_redeliveries(
    bot: Bot, sandbox: TelegramSandbox, webhook_url: Callable[[Webhook], Awaitable[str]]
) -> None:
    with pytest.raises(RuntimeError, match="no webhook"):
        await sandbox.client_says(CHAT, "/start")
    hook = Webhook(500)
    url = await webhook_url(hook)
    assert await bot.set_webhook(url, secret_token="s3cret_-X", allowed_updates=["message"])
    info = await bot.get_webhook_info()
    assert (info.url, info.allowed_updates, info.pending_update_count) == (url, ["message"], 0)

    update = await sandbox.client_says(CHAT, "/start book", first_name="Olga", language_code="ru")
    assert len(hook.received) == 2  # the 500 was retried
    assert sandbox.deliveries == [(update["update_id"], 500), (update["update_id"], 200)]
    body, secret = hook.received[-1]
    assert (body, secret) == (update, "s3cret_-X")
    message = body["message"]
    assert message["from"] == {
        "id": CHAT,
        "is_bot": False,
        "first_name": "Olga",
        "language_code": "ru",
    }
    assert message["chat"] == {"id": CHAT, "first_name": "Olga", "type": "private"}
    assert message["text"] == "/start book"
    assert isinstance(message["date"], int)
    assert message["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]

    second = await sandbox.client_says(CHAT, "hello")
    assert second["update_id"] == update["update_id"] + 1
    assert second["message"]["message_id"] == message["message_id"] + 1
    assert "entities" not in second["message"]


async def test_taps_and_callback_answers(
    bot: Bot, sandbox: TelegramSandbox, webhook_url: Callable[[Webhook], Awaitable[str]]
) -> None:
    hook = Webhook()
    await bot.set_webhook(await webhook_url(hook))  # no secret: no header
    sent = await bot.send_message(CHAT, "Pick", reply_markup=keyboard("slot:1"))
    update = await sandbox.client_taps(CHAT, sent.message_id, "slot:1")
    body, secret = hook.received[-1]
    assert (body, secret) == (update, None)
    query = body["callback_query"]
    assert (query["data"], query["message"]["message_id"]) == ("slot:1", sent.message_id)
    assert query["from"]["is_bot"] is False
    assert query["chat_instance"]

    assert await bot.answer_callback_query(query["id"], text="Booked!")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query["id"])  # answered once only
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("12345")
    with pytest.raises(ValueError, match="no button"):
        await sandbox.client_taps(CHAT, sent.message_id, "slot:2")


async def test_webhook_secret_format_is_enforced(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="secret token"):
        await bot.set_webhook("http://127.0.0.1:1/hook", secret_token="not allowed!")


async def test_send_document_accepts_an_upload(bot: Bot, sandbox: TelegramSandbox) -> None:
    file = BufferedInputFile(b"BEGIN:VCALENDAR", filename="visit.ics")
    sent = await bot.send_document(CHAT, file, caption="Your visit")
    assert sent.document is not None
    assert (sent.document.file_name, sent.document.file_size) == ("visit.ics", 15)
    assert sent.caption == "Your visit"
    assert sandbox.files[sent.document.file_id].data == b"BEGIN:VCALENDAR"
    again = await bot.send_document(CHAT, sent.document.file_id)
    assert again.document is not None
    assert again.document.file_name == "visit.ics"


async def test_send_photo_takes_an_image_of_10_mb_at_most(
    bot: Bot, sandbox: TelegramSandbox
) -> None:
    """sendPhoto: "The photo must be at most 10 MB in size" (Bot API 10.1); Telegram processes
    a photo, so bytes that are no image are refused (IMAGE_PROCESS_FAILED)."""
    jpeg = b"\xff\xd8\xff\xe0" + b"0" * 100
    sent = await bot.send_photo(CHAT, BufferedInputFile(jpeg, "a.jpg"), caption="Nails")
    assert sent.photo is not None
    assert sent.caption == "Nails"
    assert sandbox.files[sent.photo[-1].file_id].data == jpeg
    again = await bot.send_photo(CHAT, sent.photo[-1].file_id)
    assert again.photo is not None
    webp = b"RIFF\x00\x00\x00\x00WEBPVP8 "
    assert (await bot.send_photo(CHAT, BufferedInputFile(webp, "a.webp"))).photo is not None
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, BufferedInputFile(b"%PDF-1.7", "a.jpg"))
    with pytest.raises(TelegramBadRequest, match="too big"):
        await bot.send_photo(CHAT, BufferedInputFile(jpeg + b"0" * 10 * 1024 * 1024, "b.jpg"))
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(CHAT, "https://example.com/a.jpg")
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(CHAT, sent.photo[-1].file_id, caption="x" * 1025)


async def test_chat_page_is_self_contained(client: TestClient[Any, Any]) -> None:
    response = await client.get("/")
    assert (response.status, response.content_type) == (200, "text/html")
    page = await response.text()
    assert "/_sandbox/messages" in page
    assert "textContent" in page
    assert not re.search(r"(https?:)?//[\w.-]+\.[a-z]{2,}", page), "external URL in the page"
    assert "innerHTML" not in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_page_endpoints(
    bot: Bot,
    sandbox: TelegramSandbox,
    client: TestClient[Any, Any],
    webhook_url: Callable[[Webhook], Awaitable[str]],
) -> None:
    response = await client.post("/_sandbox/say", json={"chat_id": CHAT, "text": "hi"})
    assert response.status == 409  # no webhook yet
    hook = Webhook()
    await bot.set_webhook(await webhook_url(hook), secret_token="s")

    response = await client.post(
        "/_sandbox/say",
        json={"chat_id": CHAT, "text": "hi", "first_name": "Ivan", "language_code": "ru"},
    )
    report = await response.json()
    assert report["delivered"] is True
    assert report["update"]["message"]["from"]["first_name"] == "Ivan"

    first = await bot.send_message(CHAT, "Pick", reply_markup=keyboard("a"))
    await bot.send_message(CHAT, "Second")
    response = await client.get("/_sandbox/messages", params={"chat_id": CHAT, "after": 0})
    messages = (await response.json())["messages"]
    assert [m["text"] for m in messages] == ["Pick", "Second"]
    latest = max(m["seq"] for m in messages)

    response = await client.post(
        "/_sandbox/tap", json={"chat_id": CHAT, "message_id": first.message_id, "data": "a"}
    )
    assert (await response.json())["delivered"] is True
    await bot.edit_message_text("Picked", chat_id=CHAT, message_id=first.message_id)
    response = await client.get("/_sandbox/messages", params={"chat_id": CHAT, "after": latest})
    [edited] = (await response.json())["messages"]
    assert (edited["message_id"], edited["text"]) == (first.message_id, "Picked")
    assert edited["seq"] > latest

    state = await (await client.get("/_sandbox/state")).json()
    assert state["webhook_set"] is True
    assert state["counts"]["sent"] >= 3
    assert TOKEN not in str(state)
