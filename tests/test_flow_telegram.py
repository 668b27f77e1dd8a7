"""Flow tests: real-shaped Telegram updates through the real app; assertions on what the
sandbox Bot API received."""

from __future__ import annotations

from tests.conftest import Gateway, Sandbox, eventually


async def test_start_greets_by_name_in_english_with_the_menu(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    await sandbox.telegram.client_says(501, "/start", first_name="Anna", language_code="en")
    messages = await eventually(lambda: sandbox.telegram.messages_for(501))
    greeting = messages[0]
    assert greeting["text"].startswith("Hello, Anna! Welcome to Studio Nord.")
    labels = [b["text"] for row in greeting["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == [
        "📅 Book",
        "🗂 My bookings",
        "💇 Services & prices",
        "📍 Address & hours",
        "🙋 Talk to a person",
        "🌐 Language",
    ]


async def test_russian_client_is_greeted_in_russian(gateway: Gateway, sandbox: Sandbox) -> None:
    await sandbox.telegram.client_says(502, "привет", first_name="Ольга", language_code="ru")
    messages = await eventually(lambda: sandbox.telegram.messages_for(502))
    assert messages[0]["text"].startswith("Здравствуйте, Ольга! Добро пожаловать в Studio Nord.")
