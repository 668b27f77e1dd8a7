"""The pages to the salon's staff (gateway/integrations/novu/staff_pages.py): what they say, and
that a handoff's page goes only while the conversation is with no one, decided when it is sent."""

from __future__ import annotations

import pytest

from bot.i18n import Catalogs
from gateway.integrations.novu.staff import HANDOFF, UNDELIVERED, topic_key
from gateway.integrations.novu.staff_pages import HANDOFF_PAGE, STAFF_CHAT, StaffPager, StaffPages
from gateway.pipeline.streams import Author, Outgoing

SALON = "nord"


def pager(locale: str) -> StaffPager:
    words = Catalogs(default_locale=locale).get(locale)
    return StaffPager(SALON, words, "https://desk.example/app/accounts/1/")


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
