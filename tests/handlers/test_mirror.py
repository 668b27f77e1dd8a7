"""What a client's turn adds for the help desk: their line, the bot's, the handoff."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.events import Channel, ClientRef, Inbound, Kind
from bot.flows.turn import Handoff, Turn
from bot.replies import Reply
from bot.session import Offered, Owner, Session
from gateway.integrations.chatwoot.helpdesk import HelpDeskState
from gateway.pipeline import Author, Conversation
from gateway.pipeline.keys import Keys
from handlers.mirror import Mirror, bot_lines

CONV = Conversation("telegram", "501")
CLIENT = ClientRef("main", Channel.TELEGRAM, "501", "501")


def event(kind: Kind, **fields: str) -> Inbound:
    return Inbound(CLIENT, kind, "e1", name="Maria", **fields)


def test_the_client_is_shown_as_staff_should_read_them() -> None:
    before = Session(offered=[Offered(id="m:book", label="📅 Book")])
    assert Mirror.said(event(Kind.CHOICE, choice="m:book"), before) == "▶️ 📅 Book"
    # A button no longer offered: its own label, else its id.
    assert Mirror.said(event(Kind.CHOICE, choice="x", label="Old"), before) == "▶️ Old"
    assert Mirror.said(event(Kind.CHOICE, choice="x"), before) == "▶️ x"
    assert Mirror.said(event(Kind.CONTACT, phone="+7916"), before) == "📱 +7916"
    assert Mirror.said(event(Kind.START), before) == "/start"
    assert Mirror.said(event(Kind.TEXT, text="hi"), before) == "hi"
    assert Mirror.said(event(Kind.TEXT), before) == "📎"


async def test_mode_all_mirrors_each_turn_as_it_happens(redis: Redis, salon_id: str) -> None:
    state = HelpDeskState(redis, Keys(salon_id, 4))
    mirror = Mirror(state, "all")
    turn = Turn((Reply("Hello"), Reply("")), Session())
    lines = await mirror.for_turn(CONV, event(Kind.TEXT, text="hi"), Session(), turn)
    assert [(o.method, o.params["text"]) for o in lines] == [
        ("incoming", "hi"),
        ("outgoing", "Hello"),
    ]
    assert {(o.channel, o.chat, o.author) for o in lines} == {
        ("chatwoot", "tg:501", Author.HELP_DESK)
    }
    assert lines[0].params["source_id"] == "gw:in:e1"
    assert lines[1].params["source_id"] == "e1:0"
    # While a person owns the conversation only the client's line goes in.
    human = Session(owner=Owner.HUMAN)
    lines = await mirror.for_turn(CONV, event(Kind.TEXT, text="hi"), human, Turn((), human))
    assert [o.method for o in lines] == ["incoming"]


async def test_mode_handoff_keeps_a_transcript_until_the_handoff(
    redis: Redis, salon_id: str
) -> None:
    state = HelpDeskState(redis, Keys(salon_id, 4))
    mirror = Mirror(state, "handoff")
    turn = Turn((Reply("Hello"),), Session())
    assert await mirror.for_turn(CONV, event(Kind.TEXT, text="hi"), Session(), turn) == ()
    assert await state.transcript(CONV) == ["👤 hi", "🤖 Hello"]
    handed = Turn((Reply("A person will answer"),), Session(), Handoff("asked", "note"))
    [handoff] = await mirror.for_turn(CONV, event(Kind.TEXT, text="person"), Session(), handed)
    assert (handoff.method, handoff.params["note"]) == ("handoff", "note")
    assert await state.human_owns("telegram", "501")
    assert len(await state.transcript(CONV)) == 4


def test_the_bots_words_outside_a_turn_are_named_by_their_source() -> None:
    lines = bot_lines(CONV, (Reply("Back"), Reply("Menu")), "back:s1")
    assert [o.params for o in lines] == [
        {"client": {}, "text": "Back", "source_id": "back:s1:0"},
        {"client": {}, "text": "Menu", "source_id": "back:s1:1"},
    ]
