"""The session's owner is an enum in code and the same string in stored sessions."""

from __future__ import annotations

import json

from bot.session import Owner, Session


def test_a_session_stored_before_the_enum_reads_its_owner() -> None:
    assert Session.model_validate_json('{"owner": "human"}').owner is Owner.HUMAN
    assert Session.model_validate_json("{}").owner is Owner.BOT


def test_the_owner_is_stored_as_the_string_it_always_was() -> None:
    stored = json.loads(Session(owner=Owner.HUMAN).model_dump_json())
    assert stored["owner"] == "human"
