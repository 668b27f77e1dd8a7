"""The WhatsApp stand-in refuses what Meta refuses and delivers webhooks the way Meta does."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, FormData, web
from aiohttp.test_utils import TestServer

from gateway.sandbox.whatsapp import WhatsAppSandbox
from tests.conftest import CONTRACTS

SPEC = CONTRACTS / "whatsapp-cloud.openapi.json"
TOKEN = "EAAG-token"
NUMBER = "106540352242922"
SECRET = "app-secret"
JSON = dict[str, Any]


class Hook:
    """A webhook receiver that records what arrives and can answer with an error."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            if request.query.get("hub.verify_token") != "verify":
                return web.Response(status=403)
            return web.Response(text=request.query["hub.challenge"])
        self.received.append((await request.read(), request.headers["X-Hub-Signature-256"]))
        return web.Response(status=self.status)

    def payloads(self) -> list[JSON]:
        return [json.loads(raw) for raw, _ in self.received]


@pytest.fixture
async def env() -> AsyncIterator[tuple[WhatsAppSandbox, str, Hook, ClientSession]]:
    sandbox = WhatsAppSandbox(
        TOKEN, NUMBER, SECRET, SPEC if SPEC.exists() else None, redelivery_backoff=0.01
    )
    hook = Hook()
    hook_app = web.Application()
    hook_app.router.add_route("*", "/hook", hook.handle)
    hook_server = TestServer(hook_app)
    server = TestServer(sandbox.app())
    await hook_server.start_server()
    await server.start_server()
    await sandbox.subscribe(str(hook_server.make_url("/hook")), "verify")
    async with ClientSession() as http:
        yield sandbox, str(server.make_url(f"/v23.0/{NUMBER}")), hook, http
    await sandbox.close()
    await server.close()
    await hook_server.close()


async def send(http: ClientSession, url: str, body: JSON, token: str = TOKEN) -> tuple[int, JSON]:
    headers = {"Authorization": f"Bearer {token}"}
    message = {"messaging_product": "whatsapp", "recipient_type": "individual"} | body
    async with http.post(f"{url}/messages", json=message, headers=headers) as answer:
        return answer.status, await answer.json()


def buttons(*titles: str) -> JSON:
    return {
        "to": "79161234567",
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Pick"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"b{n}", "title": t}}
                    for n, t in enumerate(titles)
                ]
            },
        },
    }


def rows(count: int, title: str = "Row") -> JSON:
    return {
        "to": "79161234567",
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Pick"},
            "action": {
                "button": "Choose",
                "sections": [
                    {"rows": [{"id": f"r{n}", "title": f"{title} {n}"} for n in range(count)]}
                ],
            },
        },
    }


async def test_the_callback_must_echo_the_challenge() -> None:
    sandbox = WhatsAppSandbox(TOKEN, NUMBER, SECRET)
    hook = Hook()
    app = web.Application()
    app.router.add_route("*", "/hook", hook.handle)
    server = TestServer(app)
    await server.start_server()
    with pytest.raises(RuntimeError, match="verification failed"):
        await sandbox.subscribe(str(server.make_url("/hook")), "wrong")
    with pytest.raises(RuntimeError, match="subscribe"):
        await sandbox.post({"object": "whatsapp_business_account", "entry": []})
    await sandbox.close()
    await server.close()


async def test_a_wrong_token_or_number_is_refused(env: Any) -> None:
    _sandbox, url, _hook, http = env
    status, answer = await send(http, url, {"to": "1", "type": "text"}, token="nope")
    assert (status, answer["error"]["code"]) == (401, 190)
    wrong = url.replace(NUMBER, "42")
    status, answer = await send(http, wrong, {"to": "1", "type": "text"})
    assert answer["error"]["code"] == 100


async def test_interactive_limits_are_enforced(env: Any) -> None:
    sandbox, url, _hook, http = env
    sandbox.client("79161234567")
    await sandbox.client_says("79161234567", "hi")
    assert (await send(http, url, buttons("One", "Two", "Three")))[0] == 200
    for body in (
        buttons("1", "2", "3", "4"),
        buttons("A title of twenty-one"),
        buttons("Same", "Same"),
        rows(11),
        rows(3, "A row title longer than 24"),
    ):
        status, answer = await send(http, url, body)
        assert status == 400, body
        assert answer["error"]["code"] in (100, 131009)
    assert (await send(http, url, rows(10)))[0] == 200


async def test_templates_must_exist_with_the_right_parameters(env: Any) -> None:
    _sandbox, url, _hook, http = env

    def template(name: str, language: str, values: list[str]) -> JSON:
        parameters = [{"type": "text", "text": v} for v in values]
        return {
            "to": "79161234567",
            "type": "template",
            "template": {
                "name": name,
                "language": {"policy": "deterministic", "code": language},
                "components": [{"type": "body", "parameters": parameters}],
            },
        }

    assert (await send(http, url, template("frontdesk_reply_waiting", "ru", ["S"])))[0] == 200
    _, unknown = await send(http, url, template("frontdesk_reply_waiting", "de", ["S"]))
    assert unknown["error"]["code"] == 132001
    _, mismatch = await send(http, url, template("frontdesk_reply_waiting", "en", []))
    assert mismatch["error"]["code"] == 132000


async def test_outside_the_window_free_form_fails_with_131047(env: Any) -> None:
    sandbox, url, hook, http = env
    text = {"to": "79161234567", "type": "text", "text": {"body": "hi"}}
    status, answer = await send(http, url, text)
    assert status == 200  # accepted, then failed in a status, as Meta mostly reports it
    await sandbox.settle()
    [failed] = [p for p in hook.payloads() if "statuses" in p["entry"][0]["changes"][0]["value"]]
    status_item = failed["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status_item["status"] == "failed"
    assert status_item["errors"][0]["code"] == 131047
    sandbox.window_errors = "sync"
    status, answer = await send(http, url, text)
    assert (status, answer["error"]["code"]) == (400, 131047)


async def test_webhooks_are_signed_over_the_exact_bytes_and_redelivered(env: Any) -> None:
    sandbox, _url, hook, _http = env
    key = sandbox.client("79161234567", name="Мария")
    hook.status = 500
    await sandbox.client_says(key, "Привет")
    assert [status for _, status in sandbox.deliveries] == [500] * 4
    raw, signature = hook.received[0]
    assert b"\\u041f" in raw  # non-ASCII escaped, as Meta sends it
    expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    hook.status = 200
    await sandbox.client_says(key, "Ещё")
    assert sandbox.deliveries[-1] == ("messages:text", 200)


async def test_statuses_can_come_twice_and_out_of_order(env: Any) -> None:
    sandbox, url, hook, http = env
    key = sandbox.client("79161234567")
    await sandbox.client_says(key, "hi")
    sandbox.duplicate_statuses = True
    await send(http, url, {"to": key, "type": "text", "text": {"body": "hello"}})
    await sandbox.client_reads(key)
    statuses = [
        p["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
        for p in hook.payloads()
        if "statuses" in p["entry"][0]["changes"][0]["value"]
    ]
    # Each twice; "read" may overtake "delivered", as with Meta.
    assert sorted(statuses) == ["delivered", "delivered", "read", "read", "sent", "sent"]


async def test_taps_answer_the_latest_message_offering_the_choice(env: Any) -> None:
    sandbox, url, hook, http = env
    key = sandbox.client("79161234567")
    await sandbox.client_says(key, "hi")
    _, answer = await send(http, url, buttons("Yes", "No"))
    await sandbox.client_taps(key, "b1")
    message = hook.payloads()[-1]["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "b1", "title": "No"},
    }
    assert message["context"]["id"] == answer["messages"][0]["id"]
    assert sandbox.options(key) == [("b0", "Yes"), ("b1", "No")]
    with pytest.raises(LookupError):
        await sandbox.client_taps(key, "nothing")


async def test_uploads_and_unknown_media(env: Any) -> None:
    sandbox, url, _hook, http = env
    key = sandbox.client("79161234567")
    await sandbox.client_says(key, "hi")
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def upload(data: bytes, name: str, mime_type: str, typed: bool = True) -> Any:
        form = FormData()
        form.add_field("messaging_product", "whatsapp")
        if typed:
            form.add_field("type", mime_type)
        form.add_field("file", io.BytesIO(data), filename=name, content_type=mime_type)
        async with http.post(f"{url}/media", data=form, headers=headers) as answer:
            return await answer.json()

    assert (await upload(b"BEGIN:VCALENDAR", "a.ics", "text/calendar"))["error"]["code"] == 131053
    untyped = await upload(b"BEGIN:VCALENDAR", "a.ics", "text/plain", typed=False)
    assert untyped["error"]["code"] == 100  # `type` is required
    media_id = (await upload(b"BEGIN:VCALENDAR", "a.ics", "text/plain"))["id"]
    document = {"to": key, "type": "document", "document": {"id": media_id, "filename": "a.ics"}}
    assert (await send(http, url, document))[0] == 200
    document["document"] = {"id": "404"}
    _, missing = await send(http, url, document)
    assert missing["error"]["code"] == 131053
    # Images: 5 MB at most, JPEG or PNG only in an image message; captions of 1024 at most.
    big = await upload(b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024), "big.jpg", "image/jpeg")
    assert big["error"]["code"] == 131053
    photo_id = (await upload(b"\xff\xd8\xff", "nails.jpg", "image/jpeg"))["id"]
    image = {"to": key, "type": "image", "image": {"id": photo_id, "caption": "x" * 1025}}
    assert (await send(http, url, image))[1]["error"]["code"] == 100
    image["image"] = {"id": media_id}
    assert (await send(http, url, image))[1]["error"]["code"] == 100  # a text file as an image
    image["image"] = {"id": photo_id, "caption": "Your nails"}
    assert (await send(http, url, image))[0] == 200
    # Audio takes no caption.
    voice_id = (await upload(b"OggS", "hello.ogg", "audio/ogg"))["id"]
    audio = {"to": key, "type": "audio", "audio": {"id": voice_id, "caption": "hi"}}
    assert (await send(http, url, audio))[1]["error"]["code"] == 100
    audio["audio"] = {"id": voice_id}
    assert (await send(http, url, audio))[0] == 200


async def test_the_chat_page_says_taps_and_lists_the_conversation(env: Any) -> None:
    _sandbox, url, _hook, http = env
    page = url.rsplit("/v23.0", 1)[0]
    async with http.post(f"{page}/_sandbox/say", json={"wa_id": "+7916", "text": "Hi"}) as r:
        assert r.status == 200
    async with http.post(f"{page}/_sandbox/say", json={"wa_id": "abc", "text": "Hi"}) as r:
        assert r.status == 400
    async with http.post(f"{page}/_sandbox/tap", json={"wa_id": "7916", "id": "x"}) as r:
        assert r.status == 400
    async with http.get(f"{page}/_sandbox/messages", params={"client": "7916"}) as r:
        listed = await r.json()
    assert [m["from"] for m in listed["messages"]] == ["client"]
    async with http.get(page + "/") as r:
        assert "WhatsApp sandbox" in await r.text()
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
