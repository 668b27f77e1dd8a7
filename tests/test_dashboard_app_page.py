"""The Chatwoot Dashboard App in a real browser: the demo's staff pane hosts it as Chatwoot does
(an iframe posted the conversation, contact and agent), staff propose three held times, the
Telegram client taps one and is booked, and the conversation gets private notes. The page and
its API refuse whoever comes without the salon's key or a valid token.

Shares `frontdesk demo`, Chromium and their skips with tests/test_demo_page.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from gateway.ops.demo import DEMO_CHATWOOT_TOKEN
from tests import test_demo_page as demo_page
from tests.test_demo_page import Demo, get_json, open_page, show, wait_for

pytestmark = demo_page.pytestmark
# The demo page's module fixtures: `frontdesk demo` in a thread, and headless Chromium.
demo = demo_page.demo
browser = demo_page.browser

CHATWOOT, TELEGRAM, CALCOM = 4, 1, 2


def call(
    url: str, body: Any = None, method: str = "POST", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def client_says(demo: Demo, chat_id: int, text: str) -> None:
    status, _answer = call(demo.url(TELEGRAM, "/_sandbox/say"), {"chat_id": chat_id, "text": text})
    assert status == 200


def bot_messages(demo: Demo, chat_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = get_json(
        demo.url(TELEGRAM, f"/_sandbox/messages?chat_id={chat_id}&after=0")
    )["messages"]
    return found


def conversation_of(demo: Demo, chat_id: int) -> dict[str, Any] | None:
    """The client's conversation in the Chatwoot stand-in, as the dashboard shows it."""
    for listed in get_json(demo.url(CHATWOOT, "/_sandbox/conversations")):
        context = get_json(demo.url(CHATWOOT, f"/_sandbox/app_context?conversation={listed['id']}"))
        if context["conversation"]["contact_inbox"]["source_id"] == f"tg:{chat_id}":
            return {**context, "messages": listed["messages"]}
    return None


def test_staff_propose_three_times_and_the_clients_tap_books_one(
    demo: Demo, browser: WebDriver
) -> None:
    chat_id = open_page(browser, demo)
    client_says(demo, chat_id, "/start")
    client_says(demo, chat_id, "I want to talk to a person")
    found = wait_for(lambda: conversation_of(demo, chat_id), timeout=20)
    # Staff add the client's number in Chatwoot's contact panel (a booking needs one).
    contact_id = found["contact"]["id"]
    status, _contact = call(
        demo.url(CHATWOOT, f"/api/v1/accounts/1/contacts/{contact_id}"),
        {"phone_number": "+79161234567"},
        method="PUT",
        headers={"api_access_token": DEMO_CHATWOOT_TOKEN},
    )
    assert status == 200

    show(browser, "Staff (Chatwoot)")
    browser.switch_to.frame(
        browser.find_element(By.CSS_SELECTOR, 'iframe[title="Staff (Chatwoot)"]')
    )
    conversation_id = found["conversation"]["id"]
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".conv"))
    browser.execute_script(  # the client's conversation (the newest is selected first)
        f"selected = {conversation_id}; draw();"
    )
    toggle = wait_for(
        lambda: (
            browser.find_element(By.ID, "apps-toggle").is_displayed()
            and browser.find_element(By.ID, "apps-toggle")
        )
    )
    toggle.click()
    browser.switch_to.frame(browser.find_element(By.ID, "dashboard-app"))
    wait_for(lambda: browser.find_element(By.ID, "app").is_displayed())
    assert "Olga (reception)" in browser.find_element(By.ID, "who").text
    Select(browser.find_element(By.ID, "service")).select_by_index(0)

    def three_slots() -> list[Any] | None:
        browser.find_element(By.ID, "show").click()
        boxes = wait_for(
            lambda: (
                browser.find_elements(By.CSS_SELECTOR, ".slot input")
                or browser.find_element(By.ID, "status").text
            )
        )
        if isinstance(boxes, list) and len(boxes) >= 3:
            return boxes
        # A day off: the next day.
        browser.execute_script(
            "const d = document.getElementById('day');"
            "d.value = new Date(Date.parse(d.value) + 86400000).toISOString().slice(0, 10);"
        )
        return None

    boxes = wait_for(three_slots, timeout=30, interval=0.5)
    # Three times far enough apart not to overlap: the first, the middle and the last.
    picked = [boxes[0], boxes[len(boxes) // 2], boxes[-1]]
    chosen = [json.loads(box.get_attribute("value")) for box in picked]
    for box in picked:
        box.click()
    browser.find_element(By.ID, "propose").click()
    said = wait_for(lambda: browser.find_element(By.ID, "status").text, timeout=30)
    assert said.startswith("Proposed"), said
    browser.switch_to.default_content()

    # The client gets the three times as buttons, and taps the second.
    def offered() -> dict[str, Any] | None:
        for message in bot_messages(demo, chat_id):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            data = [b["callback_data"] for row in rows for b in row]
            if len(data) == 3 and all(d.startswith("pp:") for d in data):
                return {"message_id": message["message_id"], "data": data}
        return None

    offer = wait_for(offered, timeout=20)
    tap = {"chat_id": chat_id, "message_id": offer["message_id"], "data": offer["data"][1]}
    assert call(demo.url(TELEGRAM, "/_sandbox/tap"), tap)[0] == 200
    wait_for(
        lambda: any("You are booked" in m.get("text", "") for m in bot_messages(demo, chat_id)),
        timeout=20,
    )
    wanted = datetime.fromisoformat(chosen[1]["start"])
    bookings = get_json(demo.url(TELEGRAM, "/_sandbox/bookings"))
    mine = [
        b for b in bookings if datetime.fromisoformat(b["start"].replace("Z", "+00:00")) == wanted
    ]
    assert len(mine) == 1, bookings
    assert mine[0]["status"] == "accepted"

    def notes() -> list[str] | None:
        listed = conversation_of(demo, chat_id) or {"messages": []}
        found = [m["content"] for m in listed["messages"] if m.get("private")]
        return found if any("booked" in note for note in found) else None

    written = wait_for(notes, timeout=20)
    assert any("proposed" in note and "Olga (reception)" in note for note in written)
    assert any("The client booked" in note for note in written)


def test_the_page_and_its_api_refuse_without_the_key_or_a_valid_token(demo: Demo) -> None:
    base = demo.url(0, f"/dashboard-app/{demo.salon_id}")
    for url in (base, f"{base}?key=forged"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        with refused.value:
            assert refused.value.code == 403
    context = {"conversation": {"id": 1}, "contact": {"id": 1}, "currentAgent": {"id": 3}}
    assert call(f"{base}/api/open", context)[0] == 401
    assert (
        call(f"{base}/api/open", context, headers={"Authorization": "Bearer forged.token"})[0]
        == 401
    )
    status, answer = call(f"{base}/api/propose", {"service": "x", "slots": []})
    assert (status, answer["error"][:7]) == (401, "a valid")
