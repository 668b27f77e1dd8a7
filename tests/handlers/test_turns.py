"""One turn runner for every messenger turn: session in, bot, render, handoff mark, commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from bot.conversation import FrontDesk
from bot.events import Channel, ClientRef, Inbound, Kind
from bot.flows.turn import Turn
from bot.i18n import Catalogs
from bot.salon import Salon
from bot.session import Owner, Session
from gateway.pipeline import Author, Conversation, Outgoing
from gateway.pipeline.keys import Keys
from gateway.pipeline.sessions import SessionStore
from handlers.channels import TELEGRAM, Rendered
from handlers.turns import TurnRunner

NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
CONV = Conversation("telegram", "501")
EN = Catalogs().get("en")


def runner(redis: Redis, salon_id: str) -> TurnRunner:
    desk = FrontDesk(
        Salon(salon_id, "Studio", "UTC"), Catalogs(), timedelta(days=1), help_desk_channels=True
    )
    return TurnRunner(desk, SessionStore(redis, Keys(salon_id, 4), 3600), lambda: NOW)


async def test_a_turn_renders_and_commits_the_next_session(redis: Redis, salon_id: str) -> None:
    turns = runner(redis, salon_id)
    client = turns.client(CONV)
    assert client == ClientRef(salon_id, Channel.TELEGRAM, "501", "501")
    receipt = Outgoing("telegram", "501", "receipt", {})
    waiting = Outgoing("telegram", "501", "waiting", {})

    def render(turn: Turn) -> Rendered:
        return Rendered(TELEGRAM.replies("501", turn.replies, EN).outgoing, True, (receipt,))

    outcome = await turns.run(
        CONV, Inbound(client, Kind.START, "e1"), render, waiting=(waiting,), clear=("k",)
    )
    methods = [o.method for o in outcome.outgoing]
    assert methods[:2] == ["receipt", "waiting"]
    assert set(methods[2:]) == {"sendMessage"}
    assert all(o.author == Author.BOT for o in outcome.outgoing)
    assert outcome.session_key == turns.sessions.key(client)
    assert outcome.clear == ("k",)
    assert outcome.session is not None
    assert Session.model_validate_json(outcome.session).numbered


async def test_the_handoffs_words_are_not_held_back(redis: Redis, salon_id: str) -> None:
    turns = runner(redis, salon_id)
    client = turns.client(CONV)

    def render(turn: Turn) -> Rendered:
        return TELEGRAM.replies("501", turn.replies, EN)

    inbound = Inbound(client, Kind.TEXT, "e1", text="I want to talk to a person")
    outcome = await turns.run(CONV, inbound, render, session=Session())
    assert outcome.outgoing
    assert {o.author for o in outcome.outgoing} == {Author.HANDOFF}
    assert outcome.session is not None
    after = Session.model_validate_json(outcome.session)
    assert after.owner == Owner.HUMAN
    assert not after.numbered  # a channel that never numbers leaves the session's flag alone
    # Staff taking over: a turn without the client's words.
    turn = await turns.handle(CONV, Kind.TAKEOVER, "cw:1")
    assert turn.session.owner == Owner.HUMAN
