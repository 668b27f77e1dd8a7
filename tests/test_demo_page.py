"""The demo page as a person sees it, in a real browser: Debian's headless Chromium driven by
Selenium through the distribution's chromedriver, against `frontdesk demo` wired to the sandboxes.

Run alone with `pytest -m browser`. Without /usr/bin/chromium and /usr/bin/chromedriver (the
`chromium` and `chromium-driver` packages, which `.ci/run` installs when it runs as root) these
tests skip. Screenshots go to a `demo-page*` folder under pytest's temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis import Redis
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from gateway.ops.demo import _run, demo_overrides
from gateway.ops.demo_second_salon import SECOND_PANE
from gateway.pipeline.embedded_redis import free_port
from gateway.settings import Settings, load

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless, and quiet: the machine may have no internet, and Chromium's own background
# connections (updates, sync, QUIC probes) would only be refused.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WIDTH, HEIGHT = 1366, 768
HOST = "127.0.0.1"
# The browser's own zone and locale differ from the salon's on purpose: the calendar must not
# follow them (Los Angeles is 11 hours behind Moscow in December; en-US reads 12-hour).
BROWSER_ZONE, BROWSER_LOCALE = "America/Los_Angeles", "en-US"
SALON_ZONE = ZoneInfo("Europe/Moscow")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
        reason=f"no {CHROMIUM} and {CHROMEDRIVER}: install the chromium and chromium-driver "
        "packages (CI does, in .ci/run) to check the demo page in a browser",
    ),
]


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until `check()` is truthy; fail with its last value. An element the page redrew
    while `check()` read it (its polls replace rows and bubbles) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last value: {value!r})")
        time.sleep(interval)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


@dataclass
class Demo:
    port: int
    salon_id: str

    @property
    def page(self) -> str:
        return f"http://{HOST}:{self.port + 1}/"

    def url(self, offset: int, path: str) -> str:
        return f"http://{HOST}:{self.port + offset}{path}"


# Not the demo's own database: a demo running on this machine keeps its registry and rows.
TEST_DATABASE = "frontdesk_demo_tests"


def _settings(redis_url: str, salon_id: str, port: int) -> Settings:
    # Fifty taps in a second are beyond what the messengers' rate limits let a bot answer at
    # once; the page, not the outbox's pacing, is under test here.
    limits = {
        "telegram_rate_per_chat": 1000.0,
        "telegram_burst_per_chat": 200,
        "whatsapp_rate_per_chat": 1000.0,
        "whatsapp_burst_per_chat": 200,
    }
    overrides = demo_overrides(HOST, port) | limits
    return load(**overrides, redis_url=redis_url, salon_id=salon_id)


@pytest.fixture(scope="module")
def demo(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`frontdesk demo` in a thread of its own (its own event loop), for this module's tests."""
    salon_id = f"t{uuid.uuid4().hex[:10]}"
    port = free_port(consecutive=9)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("demo-cwd"))  # no .env of the checkout
        settings = _settings(redis_url, salon_id, port)
    loop = asyncio.new_event_loop()
    stop: list[asyncio.Event] = []
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def main() -> None:
            stop.append(asyncio.Event())
            second_id = f"{salon_id}-ru"  # the second salon, when PostgreSQL answers
            await _run(
                settings, HOST, port, False, stop[0], second_id=second_id, database=TEST_DATABASE
            )

        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # shown by the fixture, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=serve, name="demo", daemon=True)
    thread.start()

    def ready() -> bool:
        if failure:
            raise failure[0]
        try:
            state = get_json(f"http://{HOST}:{port + 1}/_sandbox/state")
        except OSError:
            return False
        # The gateway is last to start: the page is ready once its webhook is set.
        return bool(state["webhook_set"])

    wait_for(ready, timeout=30)
    try:
        yield Demo(port, salon_id)
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)
        loop.close()
        redis = Redis.from_url(redis_url)
        # The first salon's keys and the second's (`<salon_id>-ru`).
        keys = list(redis.scan_iter(match=f"fd:{{{salon_id}}}*", count=500))
        if keys:
            redis.delete(*keys)
        redis.close()
    assert not failure, failure


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    options.add_argument(f"--lang={BROWSER_LOCALE}")
    # The distribution's driver, named: Selenium must not look for (or download) one.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": BROWSER_ZONE})
        driver.execute_cdp_cmd("Emulation.setLocaleOverride", {"locale": BROWSER_LOCALE})
        resize(driver, WIDTH)
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-page")


def resize(driver: WebDriver, width: int, height: int = HEIGHT) -> None:
    """The page's viewport exactly `width` x `height` CSS pixels (a laptop screen)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def open_page(driver: WebDriver, demo: Demo) -> int:
    """Load the demo page (a new Telegram client each time); its chat id, once the panes are up."""
    driver.switch_to.default_content()
    driver.get(demo.page)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#switches button"))
    wait_for(lambda: driver.find_element(By.ID, "status").text.startswith("bot online"))
    return int(driver.find_element(By.ID, "chat-id").text)


def switches(driver: WebDriver) -> dict[str, Any]:
    driver.switch_to.default_content()
    found = driver.find_elements(By.CSS_SELECTOR, "#switches button")
    return {button.get_attribute("data-pane"): button for button in found}


def show(driver: WebDriver, title: str) -> None:
    button = switches(driver)[title]
    if button.get_attribute("aria-pressed") != "true":
        button.click()


def rect(driver: WebDriver, element: Any) -> dict[str, float]:
    box: dict[str, float] = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};",
        element,
    )
    return box


def viewport(driver: WebDriver) -> tuple[int, int]:
    size: list[int] = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    return size[0], size[1]


def assert_in_view(driver: WebDriver, element: Any, what: str) -> None:
    """Displayed, and wholly inside the (frame's) viewport: a person can see and reach it."""
    assert element.is_displayed(), f"{what} is not displayed"
    box = rect(driver, element)
    width, height = viewport(driver)
    inside = box["left"] >= -0.5 and box["top"] >= -0.5
    inside = inside and box["right"] <= width + 0.5 and box["bottom"] <= height + 0.5
    assert inside, f"{what} at {box} is outside the {width}x{height} viewport"


# Each pane and the control a person uses in it (the analytics pane is read, not written).
PANES = {
    "Telegram": "#text",
    "WhatsApp": "#text",
    "Staff (Chatwoot)": "#text",
    "Notifications (Novu)": "#reset-clock",
    "Analytics": "main",
    # The demo's second salon (with PostgreSQL): its own Telegram chat.
    SECOND_PANE: "#text",
}


def assert_controls_reachable(driver: WebDriver, titles: list[str]) -> None:
    """Each pane switched on, and the control a person uses in it in view and taking keys."""
    for title, selector in PANES.items():
        if title not in titles:
            continue  # no PostgreSQL here: no analytics pane, no second salon
        show(driver, title)
        driver.switch_to.default_content()
        if title == "Telegram":
            control = driver.find_element(By.CSS_SELECTOR, selector)
            assert_in_view(driver, control, f"{title}: {selector}")
            continue
        frame = driver.find_element(By.CSS_SELECTOR, f'iframe[title="{title}"]')
        assert_in_view(driver, frame, f"the {title} pane")
        driver.switch_to.frame(frame)
        control = wait_for(lambda s=selector: driver.find_elements(By.CSS_SELECTOR, s))[0]
        assert_in_view(driver, control, f"{title}: {selector}")
        if control.tag_name in ("input", "textarea"):
            control.send_keys("typed")  # reachable: it takes the keyboard
            assert control.get_attribute("value") == "typed"
            control.clear()
        driver.switch_to.default_content()


def test_every_panes_input_is_visible_and_reachable_on_a_laptop_screen(
    demo: Demo, browser: WebDriver, shots: Path
) -> None:
    open_page(browser, demo)
    titles = list(switches(browser))
    assert titles[:4] == list(PANES)[:4]
    assert set(titles) <= set(PANES)
    stage = browser.find_element(By.ID, "stage")
    for width in (1280, WIDTH, 1600):
        resize(browser, width)
        # What is on at first fits the screen: nothing clipped, nothing to scroll sideways.
        overflow = browser.execute_script(
            "const s = arguments[0]; return s.scrollWidth - s.clientWidth;", stage
        )
        assert overflow <= 0, f"at {width} px the panes overflow by {overflow} px"
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        browser.save_screenshot(str(shots / f"panes-{width}.png"))
    resize(browser, WIDTH)

    assert_controls_reachable(browser, titles)
    browser.save_screenshot(str(shots / "all-panes-on.png"))

    # All on at 1366 px: more than fits, so the row scrolls, and every pane's left edge
    # (the Telegram pane's first of all) can be scrolled to.
    browser.execute_script("arguments[0].scrollLeft = 0", stage)
    telegram = browser.find_element(By.ID, "telegram-pane")
    assert rect(browser, telegram)["left"] >= 0
    assert_in_view(browser, browser.find_element(By.CSS_SELECTOR, "#telegram-pane #text"), "text")

    # A pane switched off is gone, and the others share its room.
    switches(browser)["Telegram"].click()
    assert not telegram.is_displayed()
    switches(browser)["Telegram"].click()
    assert telegram.is_displayed()


def test_no_message_is_shown_twice_after_fifty_rapid_taps(
    demo: Demo, browser: WebDriver, shots: Path
) -> None:
    chat_id = open_page(browser, demo)
    # Telegram: fifty taps on /start as fast as the page takes them.
    browser.execute_script(
        "const b = document.getElementById('start'); for (let i = 0; i < 50; i++) b.click();"
    )
    sent_url = demo.url(1, f"/_sandbox/messages?chat_id={chat_id}&after=0")

    def telegram_shown() -> tuple[list[str], int] | None:
        sent = len(get_json(sent_url)["messages"])
        shown = [
            m.get_attribute("data-mid") for m in browser.find_elements(By.CSS_SELECTOR, ".msg")
        ]
        return (shown, sent) if sent >= 50 and len(shown) >= 50 + sent else None

    wait_for(telegram_shown, timeout=30)
    time.sleep(1.5)  # a few more polls: a racing one would draw a message again now
    shown, sent = telegram_shown() or ([], 0)
    assert len(set(shown)) == len(shown), "a Telegram message is shown twice"
    assert len(shown) == 50 + sent  # the fifty taps and every answer, each once
    assert all(mid.isdigit() for mid in shown)  # each client message has its id from Telegram
    browser.save_screenshot(str(shots / "telegram-after-50-taps.png"))

    # WhatsApp: a greeting, then fifty taps on its first choice while the pane polls.
    number = f"7916{uuid.uuid4().int % 10**7:07d}"
    show(browser, "WhatsApp")
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, 'iframe[title="WhatsApp"]'))
    field = browser.find_element(By.ID, "number")
    field.clear()
    field.send_keys(number)
    browser.find_element(By.ID, "text").send_keys("Hi\n")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".msg.business .actions button"))
    browser.execute_script(
        "const b = document.querySelector('.msg.business .actions .rows button')"
        " || document.querySelector('.msg.business .actions button');"
        "for (let i = 0; i < 50; i++) b.click();"
    )
    history_url = demo.url(3, f"/_sandbox/messages?client={number}&after=0")

    def whatsapp_shown() -> tuple[list[str], int] | None:
        history = get_json(history_url)["messages"]
        shown = [
            m.get_attribute("data-seq") for m in browser.find_elements(By.CSS_SELECTOR, ".msg")
        ]
        answers = [m for m in history if m["from"] == "business"]
        done = len(answers) >= 51 and len(shown) >= len(history)
        return (shown, len(history)) if done else None

    wait_for(whatsapp_shown, timeout=30)
    time.sleep(1.5)  # a few more polls: a racing one would draw a message again now
    shown, total = whatsapp_shown() or ([], 0)
    assert len(set(shown)) == len(shown), "a WhatsApp message is shown twice"
    assert len(shown) == total >= 1 + 50 + 51  # the greeting asked, 50 taps, every answer
    browser.switch_to.default_content()
    browser.save_screenshot(str(shots / "whatsapp-after-50-taps.png"))

    # Long chats and the staff's conversations push nothing out of reach.
    browser.execute_script("document.getElementById('stage').scrollLeft = 0")
    assert_controls_reachable(browser, list(switches(browser))[:4])
    browser.save_screenshot(str(shots / "full-panes.png"))


def test_the_calendar_is_on_the_salons_clock_in_24_hours(
    demo: Demo, browser: WebDriver, shots: Path
) -> None:
    open_page(browser, demo)
    bookings = get_json(demo.url(1, "/_sandbox/bookings"))
    assert bookings, "the demo salon has bookings to list"
    browser.find_element(By.CSS_SELECTOR, "#calendar summary").click()
    assert "Europe/Moscow" in browser.find_element(By.CSS_SELECTOR, "#calendar summary").text

    def rows() -> dict[str, str] | None:
        found = browser.find_elements(By.CSS_SELECTOR, "#calendar-rows tr")
        if len(found) < len(bookings):
            return None
        return {
            row.get_attribute("data-uid"): row.find_element(By.CSS_SELECTOR, "td.when").text
            for row in found
        }

    shown = wait_for(rows)
    for booking in bookings:
        start = datetime.fromisoformat(booking["start"].replace("Z", "+00:00"))
        local = start.astimezone(SALON_ZONE)
        text = shown[booking["uid"]]
        assert local.strftime("%H:%M") in text, (text, local)
        assert not re.search(r"\b(AM|PM)\b", text, re.IGNORECASE), text
        assert str(local.day) in text
    browser.save_screenshot(str(shots / "calendar.png"))

    # In the client's language: Russian month names once the client speaks Russian.
    browser.find_element(By.CSS_SELECTOR, "#lang option[value='ru']").click()
    first = bookings[0]
    local = datetime.fromisoformat(first["start"].replace("Z", "+00:00")).astimezone(SALON_ZONE)

    def russian() -> str | None:
        text: str = browser.find_element(By.CSS_SELECTOR, f'tr[data-uid="{first["uid"]}"] td').text
        return text if re.search("[а-я]", text) else None

    text = wait_for(russian, timeout=10)
    assert local.strftime("%H:%M") in text


def test_the_newest_message_stays_above_the_reply_keyboard(
    demo: Demo, browser: WebDriver, shots: Path
) -> None:
    open_page(browser, demo)
    # A long chat first, so the list scrolls.
    browser.execute_script(
        "const b = document.getElementById('start'); for (let i = 0; i < 12; i++) b.click();"
    )
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".msg.bot")) >= 12, timeout=20)

    def tap(prefix: str) -> None:
        def button() -> Any:
            found = browser.find_elements(By.CSS_SELECTOR, f'button[data-callback^="{prefix}"]')
            return found[-1] if found else None

        wait_for(button).click()

    count = len(browser.find_elements(By.CSS_SELECTOR, ".msg.bot"))
    tap("m:book")
    tap("b:s:manicure")  # one master: straight to the days
    tap("b:d:")
    tap("b:t:")
    # The time is chosen: the bot asks for a phone number with a keyboard under the field.
    keyboard = browser.find_element(By.ID, "reply-keyboard")
    wait_for(keyboard.is_displayed)
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".msg.bot")) > count)
    time.sleep(0.3)  # the list settles after the keyboard took its room
    messages = browser.find_element(By.ID, "messages")
    newest = browser.find_elements(By.CSS_SELECTOR, "#messages .msg")[-1]
    box, room, keys = rect(browser, newest), rect(browser, messages), rect(browser, keyboard)
    browser.save_screenshot(str(shots / "reply-keyboard.png"))
    assert room["bottom"] <= keys["top"] + 0.5, "the keyboard covers the messages"
    assert room["top"] <= box["top"], (box, room)
    assert box["bottom"] <= room["bottom"] + 0.5, "the newest message is out of view"


def test_the_second_salons_pane_answers_start_in_its_own_language(
    demo: Demo, browser: WebDriver, shots: Path
) -> None:
    open_page(browser, demo)
    if SECOND_PANE not in switches(browser):
        pytest.skip("no PostgreSQL here: the demo runs one salon")
    # Off at first (what is on fits a laptop screen); one switch shows it.
    assert switches(browser)[SECOND_PANE].get_attribute("aria-pressed") == "false"
    show(browser, SECOND_PANE)
    browser.switch_to.default_content()
    frame = browser.find_element(By.CSS_SELECTOR, f'iframe[title="{SECOND_PANE}"]')
    assert_in_view(browser, frame, "the second salon's pane")
    browser.switch_to.frame(frame)
    wait_for(lambda: browser.find_element(By.ID, "status").text.startswith("bot online"))
    # The page's client speaks the salon's language, and the salon's own bot answers.
    wait_for(lambda: browser.find_element(By.ID, "lang").get_attribute("value") == "ru")
    browser.find_element(By.ID, "start").click()

    def greeting() -> str | None:
        bubbles = browser.find_elements(By.CSS_SELECTOR, ".msg.bot .bubble")
        return bubbles[0].text if bubbles else None

    text = wait_for(greeting)
    assert "Добро пожаловать в Салон «Белая сирень»" in text
    assert "Frontdesk Demo Salon" not in text
    browser.switch_to.default_content()
    browser.save_screenshot(str(shots / "second-salon.png"))
