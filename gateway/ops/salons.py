"""`frontdesk salons add|update|show|list|disable|enable|remove|rotate-secrets|setup`: the
registry.

Values come from a TOML file (`--file`, the environment's names at the top level), then
`--set NAME=VALUE` (repeatable; `NAME=` removes a value on update), then `--secret NAME`, read
from the terminal without echo, or one line each from standard input when it is not a terminal
(so a secret stays out of the shell's history and the process list). A salon whose values have
problems is not written: one line a problem, exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from pathlib import Path

import asyncpg

from gateway.pipeline.redis_client import connect_redis
from gateway.salons import (
    SALON_NAMES,
    SECRET_NAMES,
    NoSuchSalon,
    Salon,
    SalonExists,
    SalonRegistry,
    SecretCipher,
    SecretsKeyError,
    from_toml,
    validate_salon,
)
from gateway.salons.values import check_id
from gateway.settings import Settings, SettingsError

EXIT_CONFIG = 2
MASK = "********"
_WHEN = "%Y-%m-%d %H:%M:%S %Z"
# What needs SECRETS_KEY: writing values (secrets are encrypted), and re-encrypting them.
_NEEDS_KEY = ("add", "update", "rotate-secrets", "setup")
_HEADING = ("ID", "NAME", "ENABLED", "SERVICES")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_salon_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    salons = commands.add_parser("salons", help="the salon registry (needs DATABASE_URL)")
    actions = salons.add_subparsers(dest="action", required=True)
    for action, text in (("add", "add a salon"), ("update", "change a salon's values")):
        writer = actions.add_parser(action, help=text)
        writer.add_argument("salon", metavar="ID")
        writer.add_argument("--file", type=Path, help="a TOML file of NAME = value lines")
        writer.add_argument(
            "--set", dest="values", action="append", default=[], metavar="NAME=VALUE"
        )
        writer.add_argument(
            "--secret",
            dest="secrets",
            action="append",
            default=[],
            metavar="NAME",
            help="read NAME's value from the terminal (or a line of standard input)",
        )
        if action == "add":
            writer.add_argument("--disabled", action="store_true", help="add it switched off")
    for action, text in (
        ("show", "a salon's values, secrets masked"),
        ("disable", "stop serving a salon (its values are kept)"),
        ("enable", "serve a disabled salon again"),
    ):
        actions.add_parser(action, help=text).add_argument("salon", metavar="ID")
    actions.add_parser("list", help="every salon: id, name, enabled, services")
    remover = actions.add_parser("remove", help="delete a salon, its values and secrets")
    remover.add_argument("salon", metavar="ID")
    remover.add_argument("--yes", action="store_true", help="yes, delete it")
    actions.add_parser(
        "rotate-secrets", help="re-encrypt every secret with SECRETS_KEY's first key"
    )
    setup = actions.add_parser(
        "setup", help="a salon's provider-side steps, idempotently, then check (gateway.ops.setup)"
    )
    setup.add_argument("salon", metavar="ID")
    setup.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")


def run_salons(settings: Settings, args: argparse.Namespace) -> int:
    """The command; what it needs from the operator (a file, secrets) is read first."""
    if settings.database_url is None:
        return _refuse("salons need DATABASE_URL (the registry's PostgreSQL)")
    salon = getattr(args, "salon", None)
    if salon is not None and (problem := check_id(salon)):
        return _refuse(problem)
    if args.action == "remove" and not args.yes:
        return _refuse(f"remove deletes salon {salon}'s values and secrets: add --yes")
    cipher = None
    if args.action in _NEEDS_KEY:
        try:
            cipher = _cipher(settings)
        except SecretsKeyError as exc:
            return _refuse(str(exc))
    values: dict[str, str] = {}
    if args.action in ("add", "update"):
        try:
            values = _given(args)
            if args.action == "add":
                _check_salon(settings, values)  # before the database is even asked
        except SettingsError as exc:
            return _problems(salon, exc.problems)
    return asyncio.run(_run(settings, args, cipher, values))


def _check_salon(settings: Settings, values: dict[str, str]) -> None:
    """A salon's values, checked as the gateway will serve them: on their own, and against the
    process (with ANALYTICS_DATABASE_URL set, each salon's clients are hashed with its salt)."""
    salon = validate_salon(values)
    if settings.analytics is not None and salon.analytics.salt is None:
        raise SettingsError(
            (
                "ANALYTICS_SALT: required, since the gateway records analytics "
                "(ANALYTICS_DATABASE_URL is set)",
            )
        )


def _cipher(settings: Settings) -> SecretCipher:
    if settings.secrets_key is None:
        raise SecretsKeyError(
            "SECRETS_KEY is not set: the salons' secrets are encrypted with it "
            "(README, Many salons: how to make one)"
        )
    return SecretCipher(settings.secrets_key.get_secret_value())


def _given(args: argparse.Namespace) -> dict[str, str]:
    """The values of `--file`, `--set` and `--secret`, in that order; `SettingsError` if any
    cannot be read."""
    values: dict[str, str] = {}
    problems: list[str] = []
    if args.file is not None:
        try:
            values.update(from_toml(args.file.read_text(encoding="utf-8")))
        except OSError as exc:
            problems.append(f"{args.file}: cannot be read ({exc.strerror})")
        except SettingsError as exc:
            problems += [f"{args.file}: {problem}" for problem in exc.problems]
    for assignment in args.values:
        name, sign, value = assignment.partition("=")
        if not sign or not _NAME.match(name.strip()):
            # Repeated only when it is a name: a stray argument could be a secret.
            shown = f" {name.strip()}" if _NAME.match(name.strip()) else ""
            problems.append(f"--set{shown}: write it as NAME=VALUE")
            continue
        values[name.strip().upper()] = value
    for name in (name.upper() for name in args.secrets):
        if name not in SECRET_NAMES:
            known = "a salon's setting: give it with --set" if name in SALON_NAMES else "unknown"
            problems.append(f"--secret {name}: not a secret ({known})")
            continue
        if not (secret := _read_secret(name)):
            problems.append(f"--secret {name}: no value was given")
            continue
        values[name] = secret
    if problems:
        raise SettingsError(tuple(problems))
    return values


def _read_secret(name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"{name}: ")
    return sys.stdin.readline().rstrip("\r\n")


async def _run(
    settings: Settings,
    args: argparse.Namespace,
    cipher: SecretCipher | None,
    values: dict[str, str],
) -> int:
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    assert settings.database_url is not None
    try:
        registry = await SalonRegistry.open(settings.database_url.get_secret_value(), cipher, redis)
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        if redis is not None:
            await redis.aclose()
        if isinstance(exc, ValueError | asyncpg.ClientConfigurationError):
            # A URL asyncpg cannot read: its words may quote a piece of the password.
            print(
                "frontdesk: DATABASE_URL cannot be read (a password with @, #, / or : is "
                "written URL-encoded, e.g. %40 for @)",
                file=sys.stderr,
            )
        else:
            print(f"frontdesk: cannot reach the registry's database: {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "setup":
            from gateway.ops.setup import setup_registry_salon

            return await setup_registry_salon(settings, registry, args.salon, args.dry_run)
        return await _act(registry, args, values)
    except NoSuchSalon:
        print(f"frontdesk: no salon {args.salon} (see `frontdesk salons list`)", file=sys.stderr)
        return 1
    except SalonExists:
        print(
            f"frontdesk: salon {args.salon} exists: change it with "
            f"`frontdesk salons update {args.salon}`",
            file=sys.stderr,
        )
        return 1
    except SettingsError as exc:
        return _problems(args.salon, exc.problems)
    except SecretsKeyError as exc:
        return _refuse(str(exc))
    finally:
        await registry.close()
        if redis is not None:
            await redis.aclose()


async def _act(registry: SalonRegistry, args: argparse.Namespace, values: dict[str, str]) -> int:
    action = args.action
    if action == "list":
        _print_list(await registry.all_salons())
    elif action == "show":
        salon = await registry.get(args.salon)
        state = "enabled" if salon.enabled else "disabled"
        print(f"salon {salon.id}: {state}, version {salon.version}")
        print(f"created {salon.created_at:{_WHEN}}, updated {salon.updated_at:{_WHEN}}")
        shown = {**salon.values, **dict.fromkeys(salon.secret_names, f"{MASK} (set)")}
        for name in sorted(shown):
            print(f"  {name} = {shown[name]}")
    elif action == "add":
        salon = await registry.add(args.salon, values, enabled=not args.disabled)
        print(f"added salon {salon.id} (version {salon.version}{', disabled' * args.disabled})")
    elif action == "update":
        salon = await registry.update(args.salon, values)
        print(f"updated salon {salon.id} (version {salon.version})")
    elif action in ("enable", "disable"):
        salon = await registry.set_enabled(args.salon, action == "enable")
        print(f"{action}d salon {salon.id} (version {salon.version})")
    elif action == "remove":
        await registry.remove(args.salon)
        print(f"removed salon {args.salon}")
    else:
        secrets, salons = await registry.rotate_secrets()
        print(f"re-encrypted {secrets} secrets of {salons} salons with SECRETS_KEY's first key")
    return 0


def _print_list(salons: list[Salon]) -> None:
    if not salons:
        print("No salons yet: add one with `frontdesk salons add <id> --file salon.toml`.")
        return
    rows = [
        (s.id, s.name or "-", "yes" if s.enabled else "no", ", ".join(s.services()) or "none")
        for s in salons
    ]
    widths = [max(len(row[i]) for row in [*rows, _HEADING]) for i in range(3)]
    for row in [_HEADING, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[3]
        )


def _refuse(message: str) -> int:
    print(f"frontdesk: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _problems(salon: str | None, problems: tuple[str, ...]) -> int:
    print(f"frontdesk: salon {salon} was not written; its values have problems:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_CONFIG
