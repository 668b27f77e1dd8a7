"""The Chatwoot stand-in refuses what Chatwoot refuses and sends webhooks as an API inbox does."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.sandbox.chatwoot import ChatwootSandbox
from tests.conftest import CONTRACTS

SPEC = CONTRACTS / "chatwoot.openapi.json"
JSON = dict[str, Any]


class Env:
    def __init__(self, cw: ChatwootSandbox, url: str, http: ClientSession) -> None:
        self.cw = cw
        self.url = url
        self.http = http
        self.received: list[tuple[bytes, dict[str, str]]] = []

    async def call(self, method: str, path: str, body: JSON | None = None, token: str = "t") -> Any:
        async with self.http.request(
            method,
            f"{self.url}/api/v1/accounts/1/{path}",
            json=body,
            headers={"api_access_token": token},
        ) as answer:
            return answer.status, await answer.json()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    cw = ChatwootSandbox("t", 1, SPEC if SPEC.exists() else None)
    hook_app = web.Application()
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=500)  # delivered once all the same

    hook_app.router.add_post("/hook", hook)
    hook_server = TestServer(hook_app)
    server = TestServer(cw.app())
    await hook_server.start_server()
    await server.start_server()
    cw.add_inbox("Telegram (gateway)", str(hook_server.make_url("/hook")))
    async with ClientSession() as http:
        env = Env(cw, str(server.make_url("")).rstrip("/"), http)
        env.received = received
        yield env
    await cw.close()
    await server.close()
    await hook_server.close()


async def make_conversation(env: Env) -> int:
    _, made = await env.call("POST", "contacts", {"inbox_id": 1, "name": "A", "identifier": "tg:1"})
    contact = made["payload"]["contact"]["id"]
    await env.call(
        "POST", f"contacts/{contact}/contact_inboxes", {"inbox_id": 1, "source_id": "tg:1"}
    )
    status, conversation = await env.call(
        "POST",
        "conversations",
        {"source_id": "tg:1", "inbox_id": 1, "contact_id": contact, "status": "pending"},
    )
    assert status == 200
    return int(conversation["id"])


async def test_auth_unique_identifiers_and_e164(env: Env) -> None:
    assert (await env.call("POST", "contacts", {"inbox_id": 1}, token="nope"))[0] == 401
    assert (await env.call("POST", "contacts", {"inbox_id": 1, "identifier": "x"}))[0] == 200
    status, answer = await env.call("POST", "contacts", {"inbox_id": 1, "identifier": "x"})
    assert (status, answer["message"]) == (422, "Identifier has already been taken")
    status, _ = await env.call("POST", "contacts", {"inbox_id": 1, "phone_number": "8916"})
    assert status == 422
    _, found = await env.call("GET", "contacts/search?q=x")
    assert [c["identifier"] for c in found["payload"]] == ["x"]


async def test_webhooks_are_signed_sent_once_and_can_be_dropped(env: Env) -> None:
    conversation = await make_conversation(env)
    await env.call(
        "POST",
        f"conversations/{conversation}/messages",
        {"content": "hi", "message_type": "incoming"},
    )
    await env.cw.settle()
    raw, headers = env.received[-1]
    secret = env.cw.inboxes[1].secret.encode()
    stamp = headers["X-Chatwoot-Timestamp"]
    expected = hmac.new(secret, stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    assert headers["X-Chatwoot-Signature"] == f"sha256={expected}"
    assert json.loads(raw)["sender"]["type"] == "contact"
    assert env.cw.deliveries == [("message_created", 500)]  # no retry on 500
    env.cw.drop_next()
    env.cw.agent_replies(conversation, "hello")
    await env.cw.settle()
    assert env.cw.deliveries[-1] == ("message_created", 0)
    env.cw.resolve(conversation)
    await env.cw.settle()
    status = json.loads(env.received[-1][0])
    assert status["event"] == "conversation_status_changed"
    assert status["changed_attributes"] == [
        {"status": {"previous_value": "pending", "current_value": "resolved"}}
    ]


async def test_invalid_requests_are_refused(env: Env) -> None:
    conversation = await make_conversation(env)
    status, _ = await env.call(
        "POST", "conversations", {"source_id": "tg:2", "inbox_id": 1, "contact_id": 1}
    )
    assert status == 422  # no contact inbox with that source id
    status, _ = await env.call(
        "POST", f"conversations/{conversation}/toggle_status", {"status": "closed"}
    )
    assert status == 422
    status, _ = await env.call(
        "POST",
        f"conversations/{conversation}/messages",
        {"content": "x", "message_type": "incoming", "private": True},
    )
    assert status == 422
    assert (await env.call("GET", "conversations/999/messages"))[0] == 404
    if env.cw.validating:
        status, answer = await env.call(
            "POST", f"conversations/{conversation}/messages", {"message_type": "outgoing"}
        )
        assert status == 422
        assert "content is required" in answer["message"]


async def test_the_agent_pane_lists_and_acts(env: Env) -> None:
    conversation = await make_conversation(env)
    for action, text in (("reply", "Hello"), ("note", "VIP"), ("resolve", "")):
        async with env.http.post(
            f"{env.url}/_sandbox/act",
            json={"conversation": conversation, "action": action, "text": text},
        ) as answer:
            assert answer.status == 200
    async with env.http.post(
        f"{env.url}/_sandbox/act", json={"conversation": conversation, "action": "reply"}
    ) as answer:
        assert answer.status == 400
    async with env.http.get(f"{env.url}/_sandbox/conversations") as answer:
        [listed] = await answer.json()
    assert listed["status"] == "resolved"
    assert [(m["content"], m["private"]) for m in listed["messages"]] == [
        ("Hello", False),
        ("VIP", True),
    ]
    async with env.http.get(env.url + "/") as answer:
        assert "salon staff" in await answer.text()


async def test_files_are_served_as_active_storage_serves_them(env: Env) -> None:
    """Rails' blob redirect controller: "All Active Storage controllers are publicly accessible
    by default" (no token), and it answers with a redirect to the storage service's expiring
    URL. The webhook's attachment carries Chatwoot's `file_metadata`: no name, no type."""
    conversation = await make_conversation(env)
    with pytest.raises(RuntimeError):
        env.cw.agent_sends_files(conversation, "", [("a.jpg", "image/jpeg", b"x")])
    env.cw.url = env.url
    with pytest.raises(ValueError, match="1 to 15"):
        env.cw.agent_sends_files(conversation, "", [])
    message = env.cw.agent_sends_files(
        conversation,
        "Look",
        [
            ("nails.jpg", "image/jpeg", b"\xff\xd8\xff"),
            ("clip.mov", "video/quicktime", b"mov"),
            ("hello.ogg", "audio/ogg", b"OggS"),
            ("logo.svg", "image/svg+xml", b"<svg/>"),  # not previewed: a file (FileTypeHelper)
        ],
    )
    image, video, audio, svg = message["attachments"]
    assert [a["file_type"] for a in message["attachments"]] == ["image", "video", "audio", "file"]
    assert (image["extension"], image["file_size"]) == ("jpg", 3)
    assert "name" not in image
    assert "content_type" not in image
    async with env.http.get(image["data_url"], allow_redirects=False) as answer:
        assert answer.status == 302
        assert "/rails/active_storage/disk/" in answer.headers["Location"]
    async with env.http.get(svg["data_url"]) as answer:
        assert (answer.status, await answer.read()) == (200, b"<svg/>")
        assert answer.content_type == "image/svg+xml"
    env.cw.file_failures = [503]
    async with env.http.get(video["data_url"]) as answer:
        assert answer.status == 503
    env.cw.forget_file(audio["id"])
    async with env.http.get(audio["data_url"]) as answer:
        assert answer.status == 404
    async with env.http.get(f"{env.url}/rails/active_storage/disk/nope/a.jpg") as answer:
        assert answer.status == 404
    assert all(not token for _path, _status, token in env.cw.downloads)
