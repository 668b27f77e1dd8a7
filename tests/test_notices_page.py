"""The Notices app in a real browser: after a handoff in the demo, the staff pane's "Notices"
button (with its unread count) opens the signed-in agent's Novu in-app feed, newest first and
unread marked; the notice links to its conversation, and "Mark as read" reads it in Novu. The
page and its API refuse whoever comes without the salon's key or a valid token.

Shares `frontdesk demo`, Chromium and their skips with tests/test_demo_page.py.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests import test_demo_page as demo_page
from tests.test_dashboard_app_page import call, client_says, conversation_of
from tests.test_demo_page import Demo, get_json, open_page, show, wait_for

pytestmark = demo_page.pytestmark
# The demo page's module fixtures: `frontdesk demo` in a thread, and headless Chromium.
demo = demo_page.demo
browser = demo_page.browser
shots = demo_page.shots

NOVU = 5


def olgas_feed(demo: Demo) -> list[dict[str, Any]]:
    state = get_json(demo.url(NOVU, "/_sandbox/state"))
    found: list[dict[str, Any]] = state["feed"].get(f"{demo.salon_id}:staff:3", [])
    return found


def test_staff_read_their_notices_in_the_staff_pane_and_mark_them_read(
    demo: Demo, browser: WebDriver, shots: Path
) -> None:
    chat_id = open_page(browser, demo)
    client_says(demo, chat_id, "/start")
    client_says(demo, chat_id, "I want to talk to a person")
    found = wait_for(lambda: conversation_of(demo, chat_id), timeout=20)
    conversation_id = found["conversation"]["id"]
    text = f"waits for a person in conversation #{conversation_id}: "
    wait_for(lambda: any(text in n["content"] for n in olgas_feed(demo)), timeout=20)

    show(browser, "Staff (Chatwoot)")
    browser.switch_to.frame(
        browser.find_element(By.CSS_SELECTOR, 'iframe[title="Staff (Chatwoot)"]')
    )
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".conv"))
    browser.execute_script(f"selected = {conversation_id}; draw();")
    button = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, 'button[data-app="Notices"]'))
    button[0].click()
    frame = browser.find_element(By.CSS_SELECTOR, 'iframe[title="Notices"]')
    browser.switch_to.frame(frame)
    wait_for(lambda: browser.find_element(By.ID, "app").is_displayed())
    assert "Olga (reception)" in browser.find_element(By.ID, "who").text
    unread = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".notice.unread"))
    newest = unread[0]
    assert text in newest.text
    link = newest.find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href").endswith(f"/conversations/{conversation_id}")
    # The pane's button counts the unread notices the app reports.
    browser.switch_to.parent_frame()
    wait_for(
        lambda: "(" in browser.find_element(By.CSS_SELECTOR, 'button[data-app="Notices"]').text
    )
    browser.switch_to.default_content()
    browser.save_screenshot(str(shots / "notices.png"))

    browser.switch_to.frame(
        browser.find_element(By.CSS_SELECTOR, 'iframe[title="Staff (Chatwoot)"]')
    )
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, 'iframe[title="Notices"]'))
    count = len(unread)
    newest.find_element(By.CSS_SELECTOR, "button.mark-read").click()
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".notice.unread")) == count - 1)
    mine = next(n for n in olgas_feed(demo) if text in n["content"])
    assert mine["read"] is True
    if count > 1:
        browser.find_element(By.ID, "read-all").click()
        wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, ".notice.unread"))
    assert "0 unread" in wait_for(lambda: browser.find_element(By.ID, "count").text)
    browser.switch_to.parent_frame()
    label = browser.find_element(By.CSS_SELECTOR, 'button[data-app="Notices"]')
    wait_for(lambda: label.text.endswith("Notices"))
    browser.switch_to.default_content()


def test_the_notices_page_and_its_api_refuse_without_the_key_or_a_valid_token(
    demo: Demo,
) -> None:
    base = demo.url(0, f"/dashboard-app/{demo.salon_id}/notices")
    for url in (base, f"{base}?key=forged"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        with refused.value:
            assert refused.value.code == 403
    assert call(f"{base}/api/feed", method="GET")[0] == 401
    forged = {"Authorization": "Bearer forged.token"}
    assert call(f"{base}/api/read", {"ids": ["0" * 24]}, headers=forged)[0] == 401
    assert call(f"{base}/api/read-all", {}, headers=forged)[0] == 401
