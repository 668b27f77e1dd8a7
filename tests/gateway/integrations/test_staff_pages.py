"""The pages to the salon's staff (gateway/integrations/novu/staff_pages.py): what they say, and
that a handoff's page goes only while the conversation is with no one, decided when it is sent."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import Catalogs
from gateway.integrations.novu.staff import HANDOFF, UNDELIVERED, topic_key
from gateway.integrations.novu.staff_pages import (
    HANDOFF_PAGE,
    STAFF_CHAT,
    UNDELIVERED_PAGE,
    DeskClient,
    StaffPager,
    StaffPages,
)
from gateway.pipeline.streams import Author, Outgoing

SALON = "nord"


def pager(locale: str) -> StaffPager:
    words = Catalogs(default_locale=locale).get(locale)
    zone = ZoneInfo("Europe/Moscow")
    return StaffPager(SALON, words, "https://desk.example/app/accounts/1/", zone, locale)


def failed(kind: str, starts_at: str | None = None) -> str:
    """A notice's failure fact (gateway/analytics/facts.py `failed_notice`), as it rides along."""
    fact = {"id": f"{SALON}:notice-failed:1", "kind": "notification_failed", "notice": kind}
    return json.dumps(fact | ({"starts_at": starts_at} if starts_at else {}))


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("person", "попросил сотрудника"),
        ("misunderstood", "бот дважды его не понял"),
        ("complaint", "сообщение похоже на жалобу"),
        ("booking", "не получилась запись"),
        ("", "причина не указана"),
        ("something new", "причина не указана"),
    ],
)
def test_a_handoff_page_names_the_reason_channel_and_language_in_the_salons_language(
    reason: str, words: str
) -> None:
    page = pager("ru").handoff(12, 340, "telegram", {"reason": reason, "language": "en"})
    assert (page.channel, page.chat, page.method, page.author) == (
        "novu",
        STAFF_CHAT,
        HANDOFF_PAGE,
        Author.NOTICE,
    )
    body = page.params
    assert body["name"] == HANDOFF
    assert body["to"] == [{"type": "Topic", "topicKey": topic_key(SALON)}]
    assert body["transactionId"] == f"{SALON}:handoff:12:340"
    assert body["payload"]["text"] == (
        f"Клиент в Telegram (пишет на языке: английский) ждёт сотрудника в разговоре №12: "
        f"{words}. Его ещё никто не взял."
    )
    assert body["payload"]["url"] == "https://desk.example/app/accounts/1/conversations/12"


def test_an_english_salon_reads_it_in_english() -> None:
    page = pager("en").handoff(3, 4, "whatsapp", {"reason": "booking", "language": "ru"})
    assert page.params["payload"]["text"] == (
        "A client on WhatsApp, writing in Russian, waits for a person in conversation #3: "
        "a booking went wrong. Nobody has taken it yet."
    )


def test_only_a_notice_to_a_client_pages_when_it_is_dead_lettered() -> None:
    staff = pager("en")
    notice = Outgoing("telegram", "55", "sendMessage", {"text": "Reminder"}, author=Author.NOTICE)
    [page] = staff.undelivered(notice, "17-0")
    assert page.method == UNDELIVERED_PAGE
    assert page.params["name"] == UNDELIVERED
    assert page.params["transactionId"] == f"{SALON}:undelivered:17-0"
    assert page.params["payload"]["conversation"] == "telegram:55"
    assert staff.undelivered(Outgoing("telegram", "55", "sendMessage", {}), "18-0") == ()
    assert staff.undelivered(page, "19-0") == ()  # a page that fails pages no one


class Recording:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def deliver(self, message: Outgoing) -> None:
        self.sent.append(message)


async def test_a_handoff_page_is_sent_only_while_the_conversation_is_with_no_one() -> None:
    holders: dict[int, int | None] = {12: None, 13: 7}
    asked: list[int] = []

    async def assignee(conversation: int) -> int | None:
        asked.append(conversation)
        return holders[conversation]

    inner = Recording()
    pages = StaffPages(inner, assignee)
    staff = pager("en")
    await pages.deliver(staff.handoff(12, 1, "telegram", {}))
    await pages.deliver(staff.handoff(13, 2, "telegram", {}))
    assert asked == [12, 13]
    [sent] = inner.sent
    assert sent.method == "trigger"
    assert sent.params["transactionId"] == f"{SALON}:handoff:12:1"
    # Anything else on the line goes as it is, with no question to Chatwoot.
    other = Outgoing("novu", STAFF_CHAT, "trigger", {"name": "staff-no-show"})
    await pages.deliver(other)
    assert inner.sent[-1] is other
    assert asked == [12, 13]


async def test_a_page_whose_assignee_cannot_be_read_fails_to_be_retried() -> None:
    async def assignee(_conversation: int) -> int | None:
        raise ConnectionError("Chatwoot is down")

    inner = Recording()
    with pytest.raises(ConnectionError):
        await StaffPages(inner, assignee).deliver(pager("en").handoff(1, 2, "telegram", {}))
    assert inner.sent == []


@pytest.mark.parametrize(
    ("locale", "kind", "client", "text"),
    [
        (
            "en",
            "reminder",
            DeskClient(12, "Vera K."),
            "The reminder (visit on Wed, 3 June, 10:00) could not be delivered to Vera K. "
            "on Telegram. Please reach them another way.",
        ),
        (
            "ru",
            "moved",
            DeskClient(12, "Вера"),
            "Сообщение об изменении записи (визит: Ср, 3 июня, 10:00) не удалось доставить "
            "клиенту «Вера» в Telegram. Свяжитесь с ним другим способом.",
        ),
        (
            "en",
            "confirmed",
            DeskClient(12, ""),
            "The booking confirmation (visit on Wed, 3 June, 10:00) could not be delivered to "
            "a client on Telegram. Please reach them another way.",
        ),
    ],
)
def test_an_undelivered_notice_says_what_did_not_arrive_and_to_whom(
    locale: str, kind: str, client: DeskClient, text: str
) -> None:
    staff = pager(locale)
    notice = Outgoing(
        "telegram",
        "55",
        "sendMessage",
        {"text": "…"},
        author=Author.NOTICE,
        failure=failed(kind, "2026-06-03T07:00:00+00:00"),
    )
    [queued] = staff.undelivered(notice, "17-0")
    page = staff.addressed(queued, client)
    assert page.method == "trigger"
    assert page.params["payload"]["text"] == text
    assert page.params["payload"]["url"] == "https://desk.example/app/accounts/1/conversations/12"
    assert page.params["transactionId"] == f"{SALON}:undelivered:17-0"


def test_a_client_the_desk_has_no_conversation_with_is_found_by_the_contact_search() -> None:
    staff = pager("en")
    notice = Outgoing(
        "whatsapp", "79160000001", "messages", {}, author=Author.NOTICE, failure=failed("reminder")
    )
    [queued] = staff.undelivered(notice, "1-0")
    page = staff.addressed(queued, DeskClient())
    payload = page.params["payload"]
    # The contact's identifier is the conversation key; the phone number is never in the page.
    assert payload["url"] == "https://desk.example/app/accounts/1/contacts?search=wa%3A79160000001"
    assert payload["text"] == (
        "The reminder could not be delivered to a client on WhatsApp. "
        "Please reach them another way."
    )


def test_without_an_answer_from_chatwoot_the_page_goes_without_a_link() -> None:
    staff = pager("en")
    notice = Outgoing("telegram", "55", "sendMessage", {}, author=Author.NOTICE)
    [queued] = staff.undelivered(notice, "1-0")
    page = staff.addressed(queued, None)
    assert page.method == "trigger"
    assert page.params["payload"]["url"] == ""
    # Without an analytics fact the kind is not known: the page still says a notice failed.
    assert page.params["payload"]["text"] == (
        "A notice from the salon could not be delivered to a client on Telegram. "
        "Please reach them another way."
    )


async def test_an_undelivered_page_is_addressed_when_it_is_sent() -> None:
    staff = pager("en")
    notice = Outgoing("telegram", "55", "sendMessage", {}, author=Author.NOTICE)
    [queued] = staff.undelivered(notice, "1-0")
    asked: list[Outgoing] = []

    async def addressed(page: Outgoing) -> Outgoing:
        asked.append(page)
        return staff.addressed(page, DeskClient(9, "Vera"))

    async def assignee(_conversation: int) -> int | None:
        raise AssertionError("not a handoff")

    inner = Recording()
    await StaffPages(inner, assignee, addressed).deliver(queued)
    assert asked == [queued]
    [sent] = inner.sent
    assert sent.method == "trigger"
    assert sent.params["payload"]["url"].endswith("/conversations/9")
