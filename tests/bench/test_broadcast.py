"""The broadcast bench end to end, small: reminders through the real outbox to stand-ins that
enforce the platforms' limits arrive all, once each, without a 429; paced over the limits,
the 429s come and are waited out, and still none is lost."""

from __future__ import annotations

from bench.broadcast import Plan, measure


async def test_a_broadcast_at_the_default_pace_gets_no_429_and_loses_nothing(
    redis_url: str,
) -> None:
    plan = Plan(reminders=160, bots=2, chats=8, channels=("telegram", "whatsapp"))
    figures = await measure(redis_url, Plan(**{**plan.__dict__, "own_process": False}))
    assert figures.queued == 160
    assert (figures.refused, figures.lost, figures.duplicates) == (0, 0, 0)
    # Per chat: Telegram's short burst (3) at most, whatever else goes; WhatsApp's pair rate
    # lets a client's messages come in a burst (the settings' 20, Meta's 45).
    assert figures.chat_max_in_1s["telegram"] <= 3
    assert figures.chat_max_in_1s["whatsapp"] <= 20
    assert {channel for channel, _rate in figures.senders} == {"telegram", "whatsapp"}


async def test_paced_over_the_limit_the_429s_are_waited_out_and_nothing_is_lost(
    redis_url: str,
) -> None:
    plan = Plan(
        reminders=90,
        bots=1,
        chats=90,
        own_process=False,
        # Twice Telegram's 30 a second: its stand-in answers 429 with retry_after.
        settings=(("TELEGRAM_RATE_GLOBAL", "60"),),
    )
    figures = await measure(redis_url, plan)
    assert figures.refused > 0
    assert (figures.lost, figures.duplicates) == (0, 0)
