"""The deployment files, read as an operator's tools would read them: the Dockerfile, the compose
file, `.dockerignore`, `.env.example` against the settings, and the package metadata.

Docker itself does not run here, so these tests check the structure that a build and a
`docker compose up` depend on.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import SecretStr

from gateway.settings import Environment, load

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
PYPROJECT = ROOT / "pyproject.toml"

FIELDS = {name.upper(): field for name, field in Environment.model_fields.items()}


# --- Dockerfile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: continuation lines joined, comments and blank lines dropped."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def stages(text: str) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"{instruction.keyword} before the first FROM"
        result[-1].append(instruction)
    return result


def args_of(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for args in args_of(stage, "ENV"):
        for pair in shlex.split(args):
            name, sep, value = pair.partition("=")
            assert sep, f"ENV {args!r}: use the NAME=value form"
            values[name] = value
    return values


@pytest.fixture(scope="module")
def dockerfile() -> list[list[Instruction]]:
    return stages(DOCKERFILE.read_text(encoding="utf-8"))


def test_dockerfile_builds_in_one_stage_and_runs_from_a_slim_one(
    dockerfile: list[list[Instruction]],
) -> None:
    assert len(dockerfile) >= 2
    images = [stage[0].args.split()[0] for stage in dockerfile]
    assert all(image == "python:3.11-slim" for image in images), images


def test_builder_installs_the_package_not_editable_and_compiles_the_catalogs(
    dockerfile: list[list[Instruction]],
) -> None:
    builds = " && ".join(args for stage in dockerfile[:-1] for args in args_of(stage, "RUN"))
    assert "venv /opt/venv" in builds
    installs = re.findall(r"pip install ([^&;]*)", builds)
    assert installs, "the builder never runs pip install"
    assert any(re.search(r"(^|\s)\.(\s|$)", args) for args in installs), installs
    assert not any(re.search(r"(^|\s)(-e|--editable)(\s|$)", args) for args in installs)
    assert re.search(r"pybabel compile -d locales -D messages", builds), builds


def test_runtime_stage_ships_the_venv_and_the_catalogs_where_the_bot_looks(
    dockerfile: list[list[Instruction]],
) -> None:
    runtime = dockerfile[-1]
    copies = [shlex.split(args) for args in args_of(runtime, "COPY")]
    from_builder = {tuple(parts[1:]) for parts in copies if parts[0].startswith("--from=")}
    assert ("/opt/venv", "/opt/venv") in from_builder
    env = env_of(runtime)
    assert ("/app/locales", env.get("LOCALES_DIR")) in from_builder, (from_builder, env)
    assert env.get("PATH", "").startswith("/opt/venv/bin:")
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("HOST") == "0.0.0.0"
    assert env.get("PORT") == "8080"
    assert env.get("LOG_FORMAT") == "json"


def test_runtime_stage_runs_as_a_user_that_is_not_root(
    dockerfile: list[list[Instruction]],
) -> None:
    runtime = dockerfile[-1]
    users = args_of(runtime, "USER")
    assert users, "the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    # The user must exist in the image: by name, or by the uid given to useradd.
    setup = " ".join(args_of(runtime, "RUN"))
    assert re.search(rf"useradd\b.*--uid {user}\b", setup) or re.search(
        rf"useradd\b.*\b{user}$", setup
    ), setup


def test_runtime_stage_serves_on_8080_with_a_healthcheck_and_a_graceful_stop(
    dockerfile: list[list[Instruction]],
) -> None:
    runtime = dockerfile[-1]
    assert "8080" in " ".join(args_of(runtime, "EXPOSE")).split()
    checks = args_of(runtime, "HEALTHCHECK")
    assert checks, "no HEALTHCHECK"
    assert "/healthz" in checks[-1]
    assert "127.0.0.1" in checks[-1]
    # The slim image has neither curl nor wget.
    assert "urllib" in checks[-1]
    assert args_of(runtime, "STOPSIGNAL") == ["SIGTERM"]
    commands = args_of(runtime, "CMD")
    assert commands, "no CMD"
    assert json.loads(commands[-1]) == ["frontdesk", "serve"]
    assert not args_of(runtime, "ENTRYPOINT")


# --- .dockerignore -----------------------------------------------------------------------------


def test_dockerignore_keeps_secrets_caches_tests_and_stale_catalogs_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert {".env", ".git", ".venv", "tests", "**/__pycache__", "**/*.mo"} <= patterns, patterns
    # What `pip install .` and the catalog compilation need stays in the context.
    needed = {"*", "**", "pyproject.toml", "README.md", "locales", "bot", "gateway", "handlers"}
    assert not patterns & needed, patterns & needed


# --- docker-compose.yml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def words(command: str | list[Any] | None) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command or []]


def test_gateway_is_built_here_and_configured_from_the_env_file(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    build = gateway["build"]
    assert (build if isinstance(build, str) else build.get("context")) == "."
    env_file = gateway["env_file"]
    assert ".env" in ([env_file] if isinstance(env_file, str) else env_file)
    assert "8080:8080" in [str(port) for port in gateway["ports"]]
    assert gateway["restart"] == "unless-stopped"
    assert gateway["stop_grace_period"] == "30s"


def test_gateway_uses_the_compose_redis_and_waits_until_it_is_healthy(
    compose: dict[str, Any],
) -> None:
    gateway = compose["services"]["gateway"]
    url = urlparse(environment(gateway)["REDIS_URL"])
    assert url.scheme == "redis"
    assert url.hostname == "redis"
    assert url.hostname in compose["services"]
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"


def test_redis_keeps_the_streams_across_a_restart(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = words(redis["command"])
    assert "--appendonly" in command
    assert command[command.index("--appendonly") + 1] == "yes"
    mounts = [str(volume).split(":") for volume in redis["volumes"]]
    named = compose.get("volumes") or {}
    assert any(source in named and target == "/data" for source, target, *_ in mounts), mounts


def test_both_services_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway_check = words(services["gateway"]["healthcheck"]["test"])
    assert gateway_check[0] in {"CMD", "CMD-SHELL"}
    assert any("/healthz" in word for word in gateway_check), gateway_check
    assert words(services["redis"]["healthcheck"]["test"])[-2:] == ["redis-cli", "ping"]


# --- .env.example ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str
    value: str
    commented: bool


ASSIGNMENT = re.compile(r"^(?P<hash>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
# The brief's shape of a real token and the looser one the settings accept: neither may appear.
TOKEN_SHAPES = (
    re.compile(r"[0-9]{8,10}:[A-Za-z0-9_-]{35}"),
    re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,}"),
)


def env_entries() -> list[Entry]:
    entries = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            entries.append(
                Entry(match["name"], match["value"].strip(), commented=bool(match["hash"]))
            )
    return entries


def is_secret(name: str) -> bool:
    annotation = FIELDS[name].annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the machine running the tests leaks into Settings."""
    for name in list(os.environ):
        if name.upper() in FIELDS:
            monkeypatch.delenv(name)


def test_env_example_names_every_setting_and_nothing_else() -> None:
    names = [entry.name for entry in env_entries()]
    assert len(names) == len(set(names)), "a variable is listed twice"
    unknown = set(names) - FIELDS.keys()
    missing = FIELDS.keys() - set(names)
    assert not unknown, f"not Settings fields: {sorted(unknown)}"
    assert not missing, f"Settings fields missing from .env.example: {sorted(missing)}"


def test_env_example_has_no_secrets_and_nothing_shaped_like_a_token() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for shape in TOKEN_SHAPES:
        assert not shape.search(text), shape.pattern
    for entry in env_entries():
        if is_secret(entry.name):
            assert entry.value == "" or entry.value.startswith("<"), entry
    telegram = [entry for entry in env_entries() if entry.name.startswith("TELEGRAM_")]
    assert telegram
    assert all(entry.commented for entry in telegram), telegram


@pytest.mark.usefixtures("clean_environment")
def test_env_example_copied_to_env_is_a_valid_configuration_with_everything_off() -> None:
    # Blank lines such as `WHATSAPP_ACCESS_TOKEN=` must read as "not set" (env_ignore_empty).
    settings = load(_env_file=ENV_EXAMPLE)
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert not any(settings.services().values()), settings.services()
    assert settings.secrets() == []


@pytest.mark.usefixtures("clean_environment")
def test_env_example_passed_as_environment_is_valid_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker compose's env_file sets every uncommented line, blank ones as empty variables.
    for entry in env_entries():
        if not entry.commented:
            monkeypatch.setenv(entry.name, entry.value)
    settings = load(_env_file=None)
    assert not any(settings.services().values()), settings.services()
    assert settings.public_url is None


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(entry, id=entry.name)
        for entry in env_entries()
        if entry.commented and not entry.value.startswith("<") and entry.name in FIELDS
    ],
)
def test_env_example_commented_values_are_the_defaults(
    entry: Entry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Uncommenting such a line changes nothing: the file documents the code's defaults.
    assert FIELDS[entry.name].default is not None, f"{entry.name}: no default to show"
    monkeypatch.setenv(entry.name, entry.value)
    settings = Environment(_env_file=None)  # type: ignore[call-arg]
    assert getattr(settings, entry.name.lower()) == FIELDS[entry.name].default


# --- pyproject.toml ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    with PYPROJECT.open("rb") as handle:
        return tomllib.load(handle)


def test_aiogram_is_pinned_to_v3_with_the_redis_and_i18n_extras(project: dict[str, Any]) -> None:
    # Unpinned, pip silently falls back to aiogram 2.25 when another pin conflicts (DESIGN §4).
    dependencies = [d.replace(" ", "") for d in project["project"]["dependencies"]]
    assert "aiogram[redis,i18n]>=3.31,<4" in dependencies, dependencies


def test_frontdesk_console_script_points_at_the_cli(project: dict[str, Any]) -> None:
    target = project["project"]["scripts"]["frontdesk"]
    assert target == "gateway.cli:main"
    module, _, attribute = target.partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_the_sandbox_page_is_package_data(project: dict[str, Any]) -> None:
    # `frontdesk demo` serves it from the installed package, not from the source tree.
    assert "sandbox/static/*" in project["tool"]["setuptools"]["package-data"]["gateway"]
    assert (ROOT / "gateway" / "sandbox" / "static" / "chat.html").is_file()


def test_the_analytics_sql_is_package_data(project: dict[str, Any]) -> None:
    # The writer applies the migrations and the reports read the questions from the installed
    # package (gateway/analytics/store.py, SQL_DIR): the glob must name the files where they are.
    patterns = project["tool"]["setuptools"]["package-data"]["gateway"]
    found = {path.name for pattern in patterns for path in (ROOT / "gateway").glob(pattern)}
    assert "0001_events.sql" in found
    assert "01_bookings_per_day.sql" in found
    # The salon registry's migrations likewise (gateway/salons/registry.py, SCHEMA).
    assert "0001_salons.sql" in found


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the repo's contracts over the packages under `root`."""
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--config", str(PYPROJECT)],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_a_new_import_circle_breaks_the_import_contracts(tmp_path: Path) -> None:
    """The contracts of [tool.importlinter] hold for the tree as it is, and an import that closes
    a circle (here the pipeline's keys importing its workers, which import the keys) breaks them,
    so CI fails on it."""
    for package in ("bot", "gateway", "handlers"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    as_is = _lint_imports(tmp_path)
    assert as_is.returncode == 0, as_is.stdout + as_is.stderr
    assert "0 broken" in as_is.stdout

    keys = tmp_path / "gateway" / "pipeline" / "keys.py"
    keys.write_text(keys.read_text() + "\nfrom gateway.pipeline import workers  # noqa: F401\n")
    circled = _lint_imports(tmp_path)
    assert circled.returncode == 1, circled.stdout + circled.stderr
    assert "No circle of imports between the modules of any package BROKEN" in circled.stdout
    assert ".keys -> .workers" in circled.stdout
