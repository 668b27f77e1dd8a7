"""deploy/: the self-hosted stack's Compose file, read as Docker Compose would, checked against
the gateway's settings: every name passed to Frontdesk is one it reads, every service it is
pointed at exists in the profile that runs it, and every ${...} has a line in .env.example."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.settings import Settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
# ${NAME}, ${NAME:-default}, ${NAME-default}; `$$` is a literal dollar.
_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}")
# Which service each Frontdesk URL must name, and the profile that runs it.
POINTS_AT = {
    "REDIS_URL": ("redis", None),
    "CHATWOOT_URL": ("chatwoot", "chatwoot"),
    "CALCOM_API_URL": ("calcom-api", "calcom"),
    "NOVU_API_URL": ("novu-api", "novu"),
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def template() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def test_frontdesk_gets_only_names_the_gateway_reads(compose: dict[str, Any]) -> None:
    passed = compose["services"]["frontdesk"]["environment"]
    known = {name.upper() for name in Settings.names()}
    assert sorted(set(passed) - known) == []
    # What the operator's steps rely on is there.
    for name in ("PUBLIC_URL", "TELEGRAM_BOT_TOKEN", "CHATWOOT_API_TOKEN", "CALCOM_API_KEY"):
        assert name in passed


def test_frontdesk_and_redis_always_run_and_each_vendor_in_its_profile(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert "profiles" not in services["frontdesk"]
    assert "profiles" not in services["redis"]
    profiles = {p for s in services.values() for p in s.get("profiles", [])}
    assert profiles == {"chatwoot", "calcom", "novu", "metabase"}
    for name, service in services.items():
        for needed in service.get("depends_on") or []:
            # A service depends only on what runs whenever it does.
            assert set(services[needed].get("profiles", [])) <= set(service.get("profiles", [])), (
                f"{name} needs {needed}"
            )


def test_frontdesk_points_at_the_services_of_the_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    passed = services["frontdesk"]["environment"]
    for name, (service, profile) in POINTS_AT.items():
        host = urlsplit(str(passed[name])).hostname
        assert host == service, name
        assert services[service].get("profiles", [None])[0] == profile
    analytics = urlsplit(template()["ANALYTICS_DATABASE_URL"])
    assert analytics.hostname == "analytics-db"
    db = services["analytics-db"]["environment"]
    assert (analytics.username, analytics.path) == (db["POSTGRES_USER"], f"/{db['POSTGRES_DB']}")
    assert analytics.password == template()["ANALYTICS_DB_PASSWORD"]


def test_each_vendor_reaches_its_own_databases(compose: dict[str, Any]) -> None:
    services = compose["services"]
    chatwoot = services["chatwoot"]["environment"]
    assert chatwoot["POSTGRES_HOST"] == "chatwoot-db"
    assert urlsplit(chatwoot["REDIS_URL"]).hostname == "chatwoot-redis"
    assert services["chatwoot-sidekiq"]["environment"] == chatwoot
    for service in ("calcom", "calcom-api"):
        assert urlsplit(services[service]["environment"]["DATABASE_URL"]).hostname == "calcom-db"
    for service in ("novu-api", "novu-worker", "novu-ws"):
        novu = services[service]["environment"]
        assert urlsplit(novu["MONGO_URL"]).hostname == "novu-mongodb"
        assert novu["REDIS_HOST"] == "novu-redis"
    assert services["metabase"]["environment"]["MB_DB_HOST"] == "metabase-db"
    # Metabase signs embeds with the secret Frontdesk signs them with.
    assert services["metabase"]["environment"]["MB_EMBEDDING_SECRET_KEY"] == (
        "${METABASE_SECRET_KEY}"
    )


def test_every_variable_of_the_compose_file_is_in_the_template() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(_VARIABLE.findall(text))
    assert used, "the pattern found nothing"
    assert sorted(used - set(template())) == []
    # The template holds no value of the root one that Compose would not use here.
    assert not [n for n in template() if not re.search(rf"\$\{{{n}\b", text)]


def test_the_template_names_no_real_secret() -> None:
    for name, value in template().items():
        if any(word in name for word in ("TOKEN", "SECRET", "KEY", "PASSWORD")):
            assert value == "" or value.startswith("change-me")


def test_the_steps_run_setup_then_check() -> None:
    steps = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert steps.index("frontdesk setup --dry-run") < steps.index("frontdesk check")
    assert (ROOT / "docker-compose.yml").is_file()  # the small one stays
