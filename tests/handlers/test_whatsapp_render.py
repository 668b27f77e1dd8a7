"""The bot's replies within WhatsApp's limits: buttons, lists with paging, numbered text."""

from __future__ import annotations

from typing import Any

import pytest

from bot.i18n import Catalogs
from bot.replies import Choice, Document, Reply
from handlers.whatsapp_render import clip, list_page, render, shorten

_ = Catalogs().get("en")


def contents(*replies: Reply, read: str | None = None) -> list[Any]:
    rendered = render("79161234567", replies, _, read=read)
    return [(m.method, m.params.get("content")) for m in rendered.outgoing]


def choices(count: int, label: str = "Option") -> tuple[Choice, ...]:
    return tuple(Choice(f"c:{n}", f"{label} {n}") for n in range(1, count + 1))


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Anna Petrova", 20, "Anna Petrova"),
        ("Women's haircut with styling", 20, "Women's haircut…"),
        ("Supercalifragilisticexpialidocious", 20, "Supercalifragilisti…"),
        ("  spaced   out  ", 20, "spaced out"),
        ("Cut, colour, and more", 12, "Cut, colour…"),
    ],
)
def test_titles_are_shortened_at_a_word_with_an_ellipsis(
    text: str, limit: int, expected: str
) -> None:
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit


def test_bodies_keep_their_lines_and_are_cut_at_a_line() -> None:
    body = "\n".join(f"line {n}" for n in range(1000))
    clipped = clip(body, 4096)
    assert len(clipped) <= 4096
    assert clipped.endswith("…")
    assert "\nline 1\n" in clipped
    assert clip("short\ntext", 4096) == "short\ntext"


def test_up_to_three_choices_are_reply_buttons() -> None:
    [(method, content)] = contents(Reply("Confirm?", choices(3)))
    assert method == "messages"
    interactive = content["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Confirm?"}
    buttons = interactive["action"]["buttons"]
    assert [b["reply"] for b in buttons] == [
        {"id": "c:1", "title": "Option 1"},
        {"id": "c:2", "title": "Option 2"},
        {"id": "c:3", "title": "Option 3"},
    ]


def test_a_read_receipt_with_typing_goes_first_and_only_when_there_is_an_answer() -> None:
    rendered = render("7916", (Reply("Hi"),), _, read="wamid.in")
    first = rendered.outgoing[0]
    assert (first.method, first.params, first.ephemeral) == (
        "read",
        {"message_id": "wamid.in"},
        True,
    )
    assert render("7916", (), _, read="wamid.in").outgoing == ()


def test_more_choices_are_a_list_with_long_labels_in_the_description() -> None:
    long = Choice("b:s:x", "Women's haircut with styling and a wash")
    [(_method, content)] = contents(Reply("Which service?", (long, *choices(4))))
    interactive = content["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == "Choose"
    rows = interactive["action"]["sections"][0]["rows"]
    assert rows[0] == {
        "id": "b:s:x",
        "title": "Women's haircut with…",
        "description": "Women's haircut with styling and a wash",
    }
    assert all(len(row["title"]) <= 24 for row in rows)
    assert "description" not in rows[1]


def test_a_priced_label_splits_into_title_and_description() -> None:
    priced = (Choice("a", "Women's haircut · RUB 2,500"), Choice("b", "Brow shaping · RUB 900"))
    [(_method, content)] = contents(Reply("Which service?", (*priced, *choices(3))))
    rows = content["interactive"]["action"]["sections"][0]["rows"]
    assert rows[0] == {"id": "a", "title": "Women's haircut", "description": "RUB 2,500"}
    assert rows[1] == {"id": "b", "title": "Brow shaping · RUB 900"}
    long_head = Choice("c", "Extraordinarily long treatment name · RUB 1")
    [(_m, other)] = contents(Reply("?", (long_head, *choices(3))))
    row = other["interactive"]["action"]["sections"][0]["rows"][0]
    assert row["title"] == "Extraordinarily long…"
    assert row["description"] == "Extraordinarily long treatment name · RUB 1"


def test_a_long_list_pages_with_a_more_row_and_every_choice_appears_once() -> None:
    many = choices(23)
    seen: list[str] = []
    start = 0
    pages = 0
    while True:
        page = list_page("Pick", many, start, _)
        rows = page["interactive"]["action"]["sections"][0]["rows"]
        assert len(rows) <= 10
        pages += 1
        if rows[-1]["id"].startswith("wa:more:"):
            assert rows[-1]["title"] == "More…"
            seen += [row["id"] for row in rows[:-1]]
            start = int(rows[-1]["id"].removeprefix("wa:more:"))
        else:
            seen += [row["id"] for row in rows]
            break
    assert seen == [c.id for c in many]
    assert pages == 3
    # Exactly ten fit on one page without a "More…".
    rows = list_page("Pick", choices(10), 0, _)["interactive"]["action"]["sections"][0]["rows"]
    assert len(rows) == 10
    assert not rows[-1]["id"].startswith("wa:more:")


def test_button_titles_that_collide_once_shortened_fall_back_to_numbered_text() -> None:
    tail = "of the long treatment with a very long name indeed, as some salons write"
    alike = (Choice("a", f"Cancel the booking {tail}"), Choice("b", f"Cancel the booking {tail}!"))
    rendered = render("7916", (Reply("Which one?", alike),), _)
    body = rendered.outgoing[0].params["content"]["text"]["body"]
    assert body == (
        f"Which one?\n\n1. Cancel the booking {tail}\n2. Cancel the booking {tail}!"
        "\n\nReply with a number."
    )
    assert rendered.numbered


def test_few_choices_that_would_be_cut_in_a_button_go_as_a_list() -> None:
    visit = Choice("k:v:1", "Tue, 1 December, 11:00 — Women's haircut")
    [(_m, content)] = contents(Reply("Your bookings:", (visit, Choice("m:home", "Menu"))))
    assert content["interactive"]["type"] == "list"
    rows = content["interactive"]["action"]["sections"][0]["rows"]
    assert rows[0] == {
        "id": "k:v:1",
        "title": "Tue, 1 December, 11:00",
        "description": "Women's haircut",
    }


def test_a_body_over_1024_characters_falls_back_to_numbered_text() -> None:
    rendered = render("7916", (Reply("x" * 1025, choices(5)),), _)
    assert rendered.outgoing[0].params["content"]["type"] == "text"
    assert rendered.numbered
    assert not render("7916", (Reply("x" * 1024, choices(5)),), _).numbered


def test_a_file_goes_as_a_document_and_its_choices_follow() -> None:
    document = Document("visit.ics", "text/calendar", b"BEGIN:VCALENDAR")
    reply = Reply("Add it to your calendar", (Choice("m:home", "Menu"),), document=document)
    [(_m1, file), (_m2, follow)] = contents(reply)
    assert file["type"] == "document"
    assert file["document"]["caption"] == "Add it to your calendar"
    assert file["document"]["filename"] == "visit.ics"
    assert file["document"]["_upload"]["mime_type"] == "text/plain"  # what WhatsApp takes
    assert follow["interactive"]["body"]["text"] == "What next?"
    [(_m3, alone)] = contents(Reply("Here", document=document))
    assert alone["type"] == "document"


def test_plain_text_has_no_link_preview_and_carries_the_language() -> None:
    rendered = render("7916", (Reply("See you"),), Catalogs().get("ru"))
    [message] = rendered.outgoing
    assert message.params == {
        "content": {"type": "text", "text": {"body": "See you", "preview_url": False}},
        "locale": "ru",
    }
    assert not rendered.numbered


def test_notes_join_the_next_message_and_keyboard_courtesies_are_left_out() -> None:
    replies = (
        Reply("👌", clear_keyboard=True, keyboard_only=True),
        Reply("14:30 is not free."),
        Reply("Choose a time:", choices(2)),
        Reply("A last word."),
    )
    sent = contents(*replies)
    assert len(sent) == 2
    assert sent[0][1]["interactive"]["body"]["text"] == "14:30 is not free.\n\nChoose a time:"
    assert sent[1][1]["text"]["body"] == "A last word."
    # A note too long to join an interactive body goes on its own.
    long = contents(Reply("n" * 1020), Reply("Pick", choices(2)))
    assert [c["type"] for _m, c in long] == ["text", "interactive"]
