"""The bot's replies as WhatsApp messages, within WhatsApp's much tighter interactive limits.

- up to 3 choices: reply buttons (titles of at most 20 characters, unique); when a label would
  have to be cut (a visit's "Tue, 1 December, 11:00 — Women's haircut"), a list instead, whose
  rows show it whole as title and description;
- more: a list message (at most 10 rows, titles of 24 and descriptions of 72 characters, a
  button label of 20); beyond 10 choices the tenth row is "More…", which shows the next page;
- anything that fits neither (a body over 1024 characters; labels too long even for a list row
  whose button titles would collide once shortened): numbered text, answered with a number.

A file (the visit's .ics) goes as a document with the reply's text as its caption; its choices
follow in a message of their own.

A label too long for a title is cut at a word boundary with "…". In a list the row's
description takes the rest: "Women's haircut · RUB 2,500" becomes the title "Women's haircut"
over "RUB 2,500"; a label without such a separator is repeated whole in the description.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

from bot.i18n import Translator
from bot.replies import Choice, Reply
from gateway.integrations.whatsapp.api import MEDIA_LIMITS, UPLOAD_MARKER
from gateway.pipeline import Outgoing

SOURCE = "whatsapp"
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
LIST_BUTTON_MAX = 20
INTERACTIVE_BODY_MAX = 1024
TEXT_MAX = 4096
# What WhatsApp accepts as a document (Meta's "Supported media types").
DOCUMENT_TYPES = MEDIA_LIMITS["document"][0]
# A list row that shows the next page of choices: `wa:more:<index of the first one>`.
MORE = "wa:more:"


@dataclass(frozen=True, slots=True)
class Rendered:
    outgoing: tuple[Outgoing, ...]
    numbered: bool  # the last choices went out as numbered text: a typed number picks one


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, cut at a word boundary when possible."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and cut.rfind(" ") >= limit // 2:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,.;:-–—") + "…"


def clip(text: str, limit: int) -> str:
    """A message body in at most `limit` characters, its lines kept (cut at a line if it can)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if "\n" in cut and cut.rfind("\n") >= limit // 2:
        cut = cut[: cut.rfind("\n")]
    return cut.rstrip() + "…"


def render(
    chat: str,
    replies: tuple[Reply, ...],
    _: Translator,
    *,
    read: str | None = None,
) -> Rendered:
    """Replies as Cloud API messages; `read`: the client's message to mark read first."""
    outgoing: list[Outgoing] = []
    if read is not None and replies:
        outgoing.append(Outgoing(SOURCE, chat, "read", {"message_id": read}, ephemeral=True))
    numbered = False
    for reply in _coalesced(replies):
        contents, numbered_here = _contents(reply, _)
        if reply.choices:
            numbered = numbered_here
        outgoing += [message(chat, content, _.locale) for content in contents]
    return Rendered(tuple(outgoing), numbered)


def _coalesced(replies: tuple[Reply, ...]) -> list[Reply]:
    """Fewer bubbles: a plain note joins the message after it (WhatsApp allows about one
    message per 6 s to a client), and what only clears Telegram's keyboard is left out."""
    result: list[Reply] = []
    note = ""
    for reply in replies:
        if reply.keyboard_only:
            continue
        if note:
            joined = f"{note}\n\n{reply.text}"
            limit = INTERACTIVE_BODY_MAX if reply.choices or reply.document else TEXT_MAX
            if len(joined) <= limit:
                reply = replace(reply, text=joined)
            else:
                result.append(Reply(note))
            note = ""
        if not reply.choices and reply.document is None:
            note = reply.text
        else:
            result.append(reply)
    if note:
        result.append(Reply(note))
    return result


def message(chat: str, content: dict[str, Any], locale: str) -> Outgoing:
    return Outgoing(SOURCE, chat, "messages", {"content": content, "locale": locale})


def list_page(
    reply_text: str, choices: tuple[Choice, ...], start: int, _: Translator
) -> dict[str, Any]:
    """One page of a list message: at most 10 rows, the last one "More…" while more follow."""
    rest = choices[start:]
    shown = rest if len(rest) <= ROWS_MAX else rest[: ROWS_MAX - 1]
    rows = [_row(choice) for choice in shown]
    if len(rest) > len(shown):
        rows.append({"id": f"{MORE}{start + len(shown)}", "title": _("wa.more")})
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": reply_text},
            "action": {
                "button": shorten(_("wa.list.button"), LIST_BUTTON_MAX),
                "sections": [{"rows": rows}],
            },
        },
    }


def _contents(reply: Reply, _: Translator) -> tuple[list[dict[str, Any]], bool]:
    choices = reply.choices
    if reply.document is not None:
        document = reply.document
        # WhatsApp takes documents of a few types only (text, PDF, Office): an .ics goes as
        # text/plain under its own name, which phones still open with the calendar.
        mime_type = document.mime_type if document.mime_type in DOCUMENT_TYPES else "text/plain"
        file = {
            "type": "document",
            "document": {
                UPLOAD_MARKER: {
                    "filename": document.filename,
                    "mime_type": mime_type,
                    "base64": base64.b64encode(document.content).decode(),
                },
                "filename": document.filename,
                "caption": clip(reply.text, INTERACTIVE_BODY_MAX),
            },
        }
        if not choices:
            return [file], False
        # A file carries no buttons: the choices follow in a message of their own.
        rest, numbered = _contents(Reply(_("wa.choose"), choices), _)
        return [file, *rest], numbered
    if not choices:
        return [_text(reply.text)], False
    if len(reply.text) > INTERACTIVE_BODY_MAX:
        return [_numbered(reply.text, choices, _)], True
    if len(choices) > BUTTONS_MAX:
        return [list_page(reply.text, choices, 0, _)], False
    whole = [_plain(c.label) for c in choices]
    if all(len(t) <= BUTTON_TITLE_MAX for t in whole) and len(set(whole)) == len(whole):
        return [_buttons(reply.text, choices, whole)], False
    if all(len(_plain(c.label)) <= ROW_DESCRIPTION_MAX for c in choices):
        # A list row has room for a longer title and a description: nothing is cut away.
        return [list_page(reply.text, choices, 0, _)], False
    titles = [shorten(choice.label, BUTTON_TITLE_MAX) for choice in choices]
    if len(set(titles)) == len(titles):
        return [_buttons(reply.text, choices, titles)], False
    return [_numbered(reply.text, choices, _)], True


def _plain(label: str) -> str:
    return " ".join(label.split())


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": clip(text, TEXT_MAX), "preview_url": False}}


def _buttons(text: str, choices: tuple[Choice, ...], titles: list[str]) -> dict[str, Any]:
    buttons = [
        {"type": "reply", "reply": {"id": choice.id, "title": title}}
        for choice, title in zip(choices, titles, strict=True)
    ]
    return {
        "type": "interactive",
        "interactive": {"type": "button", "body": {"text": text}, "action": {"buttons": buttons}},
    }


def _row(choice: Choice) -> dict[str, str]:
    label = _plain(choice.label)
    row = {"id": choice.id, "title": shorten(label, ROW_TITLE_MAX)}
    if len(label) <= ROW_TITLE_MAX:
        return row
    # "Women's haircut · RUB 2,500": the name as the title, the rest as the description.
    for separator in (" · ", " — ", ", "):
        head, found, tail = label.partition(separator)
        if found and head:
            row["title"] = shorten(head, ROW_TITLE_MAX)
            rest = tail if len(head) <= ROW_TITLE_MAX else label
            row["description"] = shorten(rest, ROW_DESCRIPTION_MAX)
            return row
    row["description"] = shorten(label, ROW_DESCRIPTION_MAX)
    return row


def _numbered(text: str, choices: tuple[Choice, ...], _: Translator) -> dict[str, Any]:
    lines = [f"{number}. {choice.label}" for number, choice in enumerate(choices, start=1)]
    body = "\n".join([text, "", *lines, "", _("wa.numbers.hint")])
    return _text(body)
