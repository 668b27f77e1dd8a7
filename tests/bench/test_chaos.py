"""The chaos run's counting (`python -m bench chaos`): the run itself takes minutes and five
processes, so CI checks what it counts; bench/README.md gives a measured line."""

from __future__ import annotations

import json

from bench.chaos import Counts, count, update_body


def greeting(chat: int, seq: int) -> tuple[int, str]:
    return chat, f"Hello, C{chat}N{seq}! Welcome to Bench Salon. How can I help you today?"


def test_every_acknowledged_update_answered_once_in_order_is_clean() -> None:
    replies = [greeting(1, 0), greeting(2, 5), greeting(1, 1), greeting(2, 6)]
    counts = count({1: [0, 1], 2: [5, 6]}, replies)
    assert counts == Counts(acked=4, replied=4, lost=0, dup=0, order_violations=0)
    assert counts.line() == "chaos: acked=4 replied=4 lost=0 dup=0 order_violations=0"


def test_an_acknowledged_update_without_a_reply_is_lost() -> None:
    counts = count({1: [0, 1, 2]}, [greeting(1, 0), greeting(1, 2)])
    assert (counts.acked, counts.replied, counts.lost) == (3, 2, 1)


def test_a_second_reply_to_one_update_is_a_duplicate() -> None:
    counts = count({1: [0, 1]}, [greeting(1, 0), greeting(1, 1), greeting(1, 0)])
    assert (counts.replied, counts.dup, counts.lost) == (2, 1, 0)


def test_a_reply_after_a_later_updates_reply_is_out_of_order() -> None:
    replies = [greeting(1, 0), greeting(1, 2), greeting(1, 1), greeting(1, 3)]
    assert count({1: [0, 1, 2, 3]}, replies).order_violations == 1
    # Other chats' replies in between do not matter.
    mixed = [greeting(1, 0), greeting(2, 9), greeting(1, 1), greeting(2, 10)]
    assert count({1: [0, 1], 2: [9, 10]}, mixed).order_violations == 0


def test_an_update_answered_with_an_error_but_queued_still_counts_as_replied() -> None:
    # Its post timed out (not acknowledged), yet the gateway had queued it: not lost, not dup.
    counts = count({1: [0]}, [greeting(1, 0), greeting(1, 1)])
    assert counts == Counts(acked=1, replied=2, lost=0, dup=0, order_violations=0)


def test_other_messages_and_names_from_another_chat_are_not_counted() -> None:
    stray = greeting(2, 0)[1]  # chat 2's greeting, seen in chat 1
    replies = [(1, "What would you like to book?"), (1, ""), (1, stray)]
    assert count({1: [0]}, replies) == Counts(acked=1, replied=0, lost=1, dup=0, order_violations=0)


def test_an_update_names_its_chat_and_number_in_the_clients_first_name() -> None:
    update = json.loads(update_body(42, 1003, 7))
    assert update["update_id"] == 42
    message = update["message"]
    assert message["from"]["first_name"] == "C1003N7"
    assert message["chat"] == {"id": 1003, "first_name": "C1003N7", "type": "private"}
    assert message["text"] == "/start"
    assert message["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
