"""The routing rules for handoffs as settings: validated at start-up (one line per problem),
matched first to last, listed by `frontdesk check`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.handoff_routing import RouteFacts, RouteRule, Routing
from gateway.ops.check import routing_lines
from gateway.salon_settings import SalonSettings
from gateway.salons.values import from_toml, validate_salon
from gateway.settings import Settings, SettingsError, load, salon_from_values

CHATWOOT = {
    "CHATWOOT_API_TOKEN": "cw-token",
    "CHATWOOT_URL": "https://chat.salon.example",
    "CHATWOOT_ACCOUNT_ID": "1",
    "CHATWOOT_WHATSAPP_INBOX_ID": "7",
    "CHATWOOT_WEBHOOK_TOKEN": "path-token",
    "CHATWOOT_TEAM_ID": "2",
}
COMPLAINTS = {"name": "complaints", "reason": "complaint", "team_id": 3, "priority": "urgent"}


def facts(**given: Any) -> RouteFacts:
    values: dict[str, Any] = {
        "reason": "person",
        "language": "ru",
        "channel": "telegram",
        "master": None,
        "after_hours": False,
    }
    return RouteFacts(**(values | given))


def salon(**values: Any) -> SalonSettings:
    return salon_from_values({**CHATWOOT, **values})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fields = set(Settings.names())
    for name in list(os.environ):
        if name.lower() in fields:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_rules_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CHATWOOT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CHATWOOT_ROUTING", json.dumps([COMPLAINTS]))
    monkeypatch.setenv("SALON_WORKING_HOURS", "Mon-Fri 10:00-20:00")
    settings = load()
    chatwoot = settings.salon.chatwoot
    assert chatwoot is not None
    assert chatwoot.routing == (RouteRule(**COMPLAINTS),)  # type: ignore[arg-type]
    assert chatwoot.routing[0].reason == ("complaint",)  # one value stands for a list of it
    assert settings.salon.profile.schedule is not None


def test_a_salon_in_the_registry_gives_its_rules_as_text_or_a_list() -> None:
    as_text = salon(CHATWOOT_ROUTING=json.dumps([COMPLAINTS]))
    as_list = salon(CHATWOOT_ROUTING=[COMPLAINTS])
    assert as_text.chatwoot is not None
    assert as_list.chatwoot is not None
    assert as_text.chatwoot.routing == as_list.chatwoot.routing
    assert salon(CHATWOOT_ROUTING="").chatwoot.routing == ()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"reason": "angry"}, "CHATWOOT_ROUTING rule 2, reason: Input should be 'person'"),
        ({"language": "de"}, "CHATWOOT_ROUTING rule 2, language: Input should be 'ru' or 'en'"),
        ({"channel": "sms"}, "CHATWOOT_ROUTING rule 2, channel"),
        ({"priority": "asap"}, "CHATWOOT_ROUTING rule 2, priority"),
        ({"hours": "night"}, "CHATWOOT_ROUTING rule 2, hours"),
        ({"team": 3}, "CHATWOOT_ROUTING rule 2, team: Extra inputs are not permitted"),
        ({"team_id": 0}, "CHATWOOT_ROUTING rule 2, team_id"),
        ({"master": "Anna"}, "CHATWOOT_ROUTING rule 2, master"),
        ({"labels": ["a, b"]}, "CHATWOOT_ROUTING rule 2, labels: a label is one word"),
    ],
)
def test_a_bad_rule_stops_the_start_naming_its_place(rule: dict[str, Any], problem: str) -> None:
    with pytest.raises(SettingsError) as error:
        salon(CHATWOOT_ROUTING=json.dumps([COMPLAINTS, rule]))
    assert any(line.startswith(problem) for line in error.value.problems), error.value.problems


def test_rules_that_are_not_json_and_hours_that_do_not_parse_are_one_line_each() -> None:
    with pytest.raises(SettingsError) as error:
        salon(CHATWOOT_ROUTING="[{reason: complaint}", SALON_WORKING_HOURS="weekdays 10-20")
    assert sorted(error.value.problems) == [
        "CHATWOOT_ROUTING: a JSON list of rules, as in the README (Chatwoot)",
        "SALON_WORKING_HOURS: 'weekdays': days are written Mon, Tue, Wed, Thu, Fri, Sat, Sun",
    ]


def test_each_condition_alone_and_the_first_match_wins() -> None:
    routing = Routing(
        (
            RouteRule(name="ru complaints on wa", reason=("complaint",), language=("ru",),
                      channel=("whatsapp",), team_id=3, labels=("complaint",), priority="urgent"),
            RouteRule(name="misunderstood", reason=("misunderstood", "booking"), team_id=4),
            RouteRule(name="anna", master=(12,), assignee_id=7),
            RouteRule(name="english", language=("en",), team_id=5),
            RouteRule(name="whatsapp", channel=("whatsapp",), team_id=6),
            RouteRule(name="night", hours="out", priority="low"),
        ),
        team_id=2,
        assignee_id=9,
        labels=("handoff",),
    )  # fmt: skip
    complaint = routing.route(facts(reason="complaint", channel="whatsapp"))
    assert complaint.rule == "ru complaints on wa"
    assert (complaint.team_id, complaint.assignee_id) == (3, None)
    assert (complaint.labels, complaint.priority) == (("handoff", "complaint"), "urgent")
    # Without one of its three conditions the combined rule lets the handoff go on.
    assert routing.route(facts(reason="complaint", channel="telegram")).rule == ""
    assert routing.route(facts(reason="complaint", language="en", channel="whatsapp")).rule == (
        "english"
    )
    assert routing.route(facts(reason="booking")).team_id == 4
    anna = routing.route(facts(master=12))
    assert (anna.rule, anna.team_id, anna.assignee_id) == ("anna", 2, 7)
    assert routing.route(facts(language="en")).team_id == 5
    assert routing.route(facts(channel="whatsapp")).team_id == 6
    night = routing.route(facts(after_hours=True))
    assert (night.rule, night.priority, night.labels) == (
        "night",
        "low",
        ("handoff", "after-hours"),
    )
    # A rule without a team or an agent keeps the default's.
    assert (night.team_id, night.assignee_id) == (2, 9)
    # None takes it: the default, no priority.
    default = routing.route(facts())
    assert (default.rule, default.team_id, default.assignee_id, default.priority) == (
        "",
        2,
        9,
        None,
    )


def test_a_rule_without_conditions_takes_every_handoff() -> None:
    routing = Routing((RouteRule(team_id=8),), team_id=2)
    assert routing.route(facts()).team_id == 8
    assert routing.route(facts()).rule == "rule 1"


def test_frontdesk_check_lists_the_rules_in_order_the_default_and_the_hours() -> None:
    configured = salon(
        CHATWOOT_ROUTING=json.dumps([COMPLAINTS, {"language": ["en", "ru"], "hours": "out"}]),
        SALON_WORKING_HOURS="Mon-Fri 10:00-20:00",
        SALON_TIMEZONE="Europe/Moscow",
    )
    assert configured.chatwoot is not None
    assert routing_lines(configured.chatwoot, configured.profile) == [
        "routing 1. complaints: reason=complaint → team 3, priority urgent",
        "routing 2. rule: language=en|ru hours=out → the default",
        "routing otherwise → team 2, labels handoff",
        "working hours: Mon 10:00-20:00; Tue 10:00-20:00; Wed 10:00-20:00; Thu 10:00-20:00; "
        "Fri 10:00-20:00 (Europe/Moscow); outside them: after-hours",
    ]
    plain = salon()
    assert plain.chatwoot is not None
    assert routing_lines(plain.chatwoot, plain.profile)[-1].startswith("working hours: not set")


def test_a_registry_salon_keeps_its_own_rules_from_its_toml_file() -> None:
    """Per salon for free: the registry reads the same names, a TOML list of tables included."""
    text = "\n".join(
        [
            *(f'{name} = "{value}"' for name, value in CHATWOOT.items()),
            'SALON_WORKING_HOURS = "Mon-Sat 09:00-21:00"',
            "[[CHATWOOT_ROUTING]]",
            'reason = "complaint"',
            'language = ["ru"]',
            "team_id = 3",
            'priority = "high"',
        ]
    )
    kept = validate_salon(from_toml(text), "north")
    assert kept.chatwoot is not None
    [rule] = kept.chatwoot.routing
    assert (rule.reason, rule.language, rule.team_id, rule.priority) == (
        ("complaint",),
        ("ru",),
        3,
        "high",
    )
    assert kept.profile.schedule is not None
    with pytest.raises(SettingsError) as error:
        validate_salon({**CHATWOOT, "CHATWOOT_ROUTING": '[{"priority": "asap"}]'}, "north")
    assert error.value.problems[0].startswith("CHATWOOT_ROUTING rule 1, priority:")


async def test_frontdesk_check_prints_the_rules_after_reaching_chatwoot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiohttp.test_utils import TestServer

    from gateway.sandbox.chatwoot import ChatwootSandbox
    from tests.gateway.test_cli import run

    chatwoot = ChatwootSandbox("cw-token", 1, role="administrator")
    inbox = chatwoot.add_inbox("WhatsApp (gateway)")
    server = TestServer(chatwoot.app())
    await server.start_server()
    env = {
        **CHATWOOT,
        "CHATWOOT_URL": str(server.make_url("")).rstrip("/"),
        "CHATWOOT_WHATSAPP_INBOX_ID": str(inbox.id),
        "CHATWOOT_ROUTING": json.dumps([COMPLAINTS]),
        "SALON_WORKING_HOURS": "Sat 10:00-16:00",
        "SALON_TIMEZONE": "Europe/Moscow",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        await run("check")
    finally:
        await chatwoot.close()
        await server.close()
    out = capsys.readouterr().out
    assert "[ok  ] chatwoot  whatsapp → WhatsApp (gateway); token role administrator" in out
    assert (
        "[ok  ] chatwoot  routing 1. complaints: reason=complaint → team 3, priority urgent\n"
        "[ok  ] chatwoot  routing otherwise → team 2, labels handoff\n"
        "[ok  ] chatwoot  working hours: Sat 10:00-16:00 (Europe/Moscow); outside them: "
        "after-hours\n"
    ) in out
