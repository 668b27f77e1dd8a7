"""A Bot API call's body: compact UTF-8 JSON, whatever the parameters hold."""

from __future__ import annotations

import json

from gateway.integrations.telegram.api import json_body


def test_text_goes_as_utf8_and_reads_back_the_same() -> None:
    params = {
        "chat_id": -1001234567890,
        "text": "Запись на среду, 15:00 ✂️",
        "reply_markup": {"inline_keyboard": [[{"text": "Да", "callback_data": "b:c:1"}]]},
    }
    body = json_body(params)
    assert "Запись".encode() in body  # not \\u-escaped
    assert json.loads(body) == params


def test_what_orjson_refuses_the_stdlib_writes() -> None:
    params = {1: "a key that is not a string", "big": 2**70}
    assert json.loads(json_body(params)) == {"1": "a key that is not a string", "big": 2**70}
