"""The Chatwoot stand-in refuses what Chatwoot refuses and sends webhooks as an API inbox does."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.sandbox.chatwoot import ChatwootSandbox
from gateway.sandbox.spec import load_spec
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
        """A call of the account's API; a path starting with "/" is under /api/v1 itself."""
        url = f"{self.url}/api/v1{path}" if path.startswith("/") else None
        async with self.http.request(
            method,
            url or f"{self.url}/api/v1/accounts/1/{path}",
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


async def test_an_agent_who_opens_a_conversation_is_assigned_it_an_administrator_is_not(
    env: Env,
) -> None:
    """conversations_controller#toggle_status: "assign_conversation if
    should_assign_conversation?", where should_assign_conversation? is "@conversation.status ==
    'open' && Current.user.is_a?(User) && Current.user&.agent?" (handle_human_open in newer
    versions: "@conversation.assignee = Current.user if Current.user.agent?"), whatever the
    conversation's assignee was."""
    conversation = await make_conversation(env)
    thread = env.cw.conversations[conversation]
    thread.assignee_id = 3
    status, _ = await env.call(
        "POST", f"conversations/{conversation}/toggle_status", {"status": "open"}
    )
    assert (status, thread.status, thread.assignee_id) == (200, "open", 2)  # the caller
    env.cw.role = "administrator"
    thread.status, thread.assignee_id = "pending", None
    await env.call("POST", f"conversations/{conversation}/toggle_status", {"status": "open"})
    assert (thread.status, thread.assignee_id) == ("open", None)
    _, profile = await env.call("GET", "/profile")
    assert [(a["id"], a["role"]) for a in profile["accounts"]] == [(1, "administrator")]


async def test_an_agent_bot_opening_a_pending_conversation_is_chatwoots_bot_handoff(
    env: Env,
) -> None:
    """toggle_status: "if pending_to_open_by_bot? then @conversation.bot_handoff!" where the
    caller "is_a?(AgentBot)" and "@conversation.status == 'pending' && params[:status] ==
    'open'"; bot_handoff! is "open!", whose save runs AutoAssignmentHandler#run_auto_assignment
    ("run only if assignee is blank"). A bot token passes only BOT_ACCESSIBLE_ENDPOINTS
    (access_token_auth_helper.rb): "Access to this endpoint is not authorized for bots"."""
    env.cw.bot_token = "bot"
    env.cw.inboxes[1].auto_assignee = 3
    conversation = await make_conversation(env)
    thread = env.cw.conversations[conversation]
    status, _ = await env.call(
        "POST", f"conversations/{conversation}/toggle_status", {"status": "open"}, token="bot"
    )
    assert status == 200
    assert env.cw.bot_handoffs == [conversation]
    assert (thread.status, thread.assignee_id) == ("open", 3)  # the inbox's auto-assignment
    status, answer = await env.call("POST", "contacts", {"inbox_id": 1}, token="bot")
    assert (status, answer["message"]) == (
        401,
        "Access to this endpoint is not authorized for bots",
    )
    assert (await env.call("GET", "/profile", token="bot"))[0] == 401
    assert (await env.call("GET", f"conversations/{conversation}/messages", token="bot"))[0] == 401


async def test_the_messages_list_gives_integer_types_and_unix_times_webhooks_names(
    env: Env,
) -> None:
    """_message.json.jbuilder: "json.message_type message.message_type_before_type_cast" (enum
    incoming: 0, outgoing: 1, activity: 2, template: 3) and "json.created_at
    message.created_at.to_i"; Message#webhook_data gives "message_type: message_type" (the
    name) and "created_at: created_at". MessageFinder: after an id "limit(100)", else the
    latest "limit(20)", ascending."""
    conversation = await make_conversation(env)
    _, posted = await env.call(
        "POST",
        f"conversations/{conversation}/messages",
        {"content": "hi", "message_type": "incoming", "source_id": "gw:in:1"},
    )
    assert (posted["message_type"], posted["source_id"]) == (0, "gw:in:1")
    env.cw.agent_replies(conversation, "hello")
    _, listed = await env.call("GET", f"conversations/{conversation}/messages")
    first, second = listed["payload"]
    assert (first["message_type"], second["message_type"]) == (0, 1)
    assert isinstance(first["created_at"], int)
    assert abs(first["created_at"] - time.time()) < 5
    if env.cw.validating:
        spec = load_spec(SPEC)
        properties = spec.schemas["message"]["properties"]
        for field in ("message_type", "created_at"):
            assert spec.problems(first[field], properties[field]) == []
    await env.cw.settle()
    hooked = json.loads(env.received[0][0])
    assert hooked["message_type"] == "incoming"
    assert hooked["created_at"].endswith("Z")
    for n in range(25):
        env.cw.agent_note(conversation, f"note {n}")
    _, latest = await env.call("GET", f"conversations/{conversation}/messages")
    assert [m["content"] for m in latest["payload"]] == [f"note {n}" for n in range(5, 25)]
    _, after = await env.call("GET", f"conversations/{conversation}/messages?after={posted['id']}")
    assert len(after["payload"]) == 26


async def test_an_incoming_message_reopens_a_resolved_or_snoozed_conversation_not_a_pending(
    env: Env,
) -> None:
    """Message#reopen_conversation: "conversation.open! if conversation.snoozed?" and
    "reopen_resolved_conversation if conversation.resolved?", which for an API inbox without
    an active bot is "conversation.open!"; nothing for a pending one."""
    conversation = await make_conversation(env)
    thread = env.cw.conversations[conversation]
    for before, after in (("pending", "pending"), ("resolved", "open"), ("snoozed", "open")):
        thread.status = before
        await env.call(
            "POST",
            f"conversations/{conversation}/messages",
            {"content": "again", "message_type": "incoming"},
        )
        assert thread.status == after
    thread.status = "resolved"
    env.cw.agent_note(conversation, "a note is outgoing")
    assert thread.status == "resolved"


async def test_assignments_unassign_by_an_unknown_id_and_teams_keep_their_members(
    env: Env,
) -> None:
    """AssignmentsController#create: "if params.key?(:assignee_id)" the AssignmentService sets
    "conversation.account.users.find_by(id: assignee_id)" (nil for 0); a team change runs
    ensure_assignee_is_from_team: "self.assignee_id = nil if team&.members&.exclude?(assignee)"."""
    conversation = await make_conversation(env)
    thread = env.cw.conversations[conversation]
    await env.call("POST", f"conversations/{conversation}/assignments", {"assignee_id": 3})
    assert thread.assignee_id == 3
    await env.call("POST", f"conversations/{conversation}/assignments", {"team_id": 2})
    assert (thread.assignee_id, thread.team_id) == (3, 2)  # Olga is in team 2
    await env.call("POST", f"conversations/{conversation}/assignments", {"assignee_id": 0})
    assert thread.assignee_id is None
    thread.assignee_id, thread.team_id = 2, None
    await env.call("POST", f"conversations/{conversation}/assignments", {"team_id": 2})
    assert (thread.assignee_id, thread.team_id) == (None, 2)  # the gateway is not


async def test_a_lost_answer_still_stores_the_message(env: Env) -> None:
    conversation = await make_conversation(env)
    env.cw.lose_answers()
    status, _ = await env.call(
        "POST",
        f"conversations/{conversation}/messages",
        {"content": "hi", "message_type": "incoming", "source_id": "gw:in:9"},
    )
    assert status == 502
    assert [m["source_id"] for m in env.cw.conversations[conversation].messages] == ["gw:in:9"]


async def test_contact_merge_moves_everything_to_the_base_and_destroys_the_mergee(
    env: Env,
) -> None:
    conversation = await make_conversation(env)  # contact "tg:1"
    await env.call(
        "POST",
        f"conversations/{conversation}/messages",
        {"content": "hi", "message_type": "incoming"},
    )
    [mergee] = env.cw.contacts.values()
    mergee.phone_number = "+79160000901"
    whatsapp = env.cw.add_inbox("WhatsApp (gateway)")
    _, made = await env.call(
        "POST", "contacts", {"inbox_id": whatsapp.id, "name": "", "identifier": "wa:7"}
    )
    base = made["payload"]["contact"]["id"]

    # Unknown contacts are looked up in the account: 404.
    status, _ = await env.call(
        "POST", "actions/contact_merge", {"base_contact_id": base, "mergee_contact_id": 999}
    )
    assert status == 404
    status, answer = await env.call(
        "POST", "actions/contact_merge", {"base_contact_id": base, "mergee_contact_id": mergee.id}
    )
    assert status == 200
    # The base's attributes win; its blanks take the mergee's.
    assert answer["identifier"] == "wa:7"
    assert answer["name"] == "A"
    assert answer["phone_number"] == "+79160000901"
    assert list(env.cw.contacts) == [base]
    moved = env.cw.conversations[conversation]
    assert moved.contact_id == base
    assert moved.source_id == "tg:1"
    assert env.cw.contacts[base].sources[1] == "tg:1"  # its contact inbox moved too
    assert moved.messages[-1]["sender"]["id"] == base
    assert env.cw.merges == [(base, mergee.id)]
    # The mergee is gone: merging it again is a 404.
    status, _ = await env.call(
        "POST", "actions/contact_merge", {"base_contact_id": base, "mergee_contact_id": mergee.id}
    )
    assert status == 404


async def test_priority_takes_the_specs_enum_and_none_clears_it(env: Env) -> None:
    conversation = await make_conversation(env)
    path = f"conversations/{conversation}/toggle_priority"
    assert (await env.call("POST", path, {"priority": "urgent"}))[0] == 200
    assert env.cw.conversations[conversation].priority == "urgent"
    _, shown = await env.call("GET", f"conversations/{conversation}")
    assert shown["priority"] == "urgent"
    status, _ = await env.call("POST", path, {"priority": "asap"})
    assert status == 422
    assert env.cw.conversations[conversation].priority == "urgent"
    assert (await env.call("POST", path, {}))[0] == 422  # `priority` is required
    await env.call("POST", path, {"priority": "none"})
    assert env.cw.conversations[conversation].priority is None
    assert env.cw.priorities == [(conversation, "urgent"), (conversation, None)]


async def test_an_agent_bot_may_set_the_priority_not_the_labels(env: Env) -> None:
    """BOT_ACCESSIBLE_ENDPOINTS (access_token_auth_helper.rb) has toggle_priority."""
    env.cw.bot_token = "bot"
    conversation = await make_conversation(env)
    path = f"conversations/{conversation}/toggle_priority"
    assert (await env.call("POST", path, {"priority": "low"}, token="bot"))[0] == 200
    labels = f"conversations/{conversation}/labels"
    assert (await env.call("POST", labels, {"labels": ["handoff"]}, token="bot"))[0] == 401


async def test_labels_replace_the_list_keeping_only_the_accounts_own(env: Env) -> None:
    conversation = await make_conversation(env)
    env.cw.account_labels |= {"vip"}
    path = f"conversations/{conversation}/labels"
    status, answer = await env.call("POST", path, {"labels": ["vip", "nobody-made-this"]})
    assert (status, answer["payload"]) == (200, ["vip"])
    _, answer = await env.call("POST", path, {"labels": ["handoff"]})
    assert answer["payload"] == ["handoff"]  # replaced, not added to


async def test_custom_attributes_replace_the_hash_unless_merged(env: Env) -> None:
    conversation = await make_conversation(env)
    path = f"conversations/{conversation}/custom_attributes"
    await env.call("POST", path, {"custom_attributes": {"channel": "telegram"}})
    await env.call("POST", path, {"custom_attributes": {"reply_after": "x"}})
    assert env.cw.conversations[conversation].custom_attributes == {"reply_after": "x"}
    await env.call("POST", path, {"custom_attributes": {"channel": "tg"}, "merge": True})
    assert env.cw.conversations[conversation].custom_attributes == {
        "reply_after": "x",
        "channel": "tg",
    }
