"""`frontdesk dlq list|replay|purge [--salon ID]`: a salon's dead letters, from its own keys
(the environment's salon by default; a registry salon's live in the same Redis, under its id).

A salon the registry no longer has (removed) may still have dead letters, which hold whole
messages: `list` and `purge` reach them all the same (with a note), so that they can be seen
and deleted; `replay` refuses, since no salon would ever handle them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from gateway.ops.salon_choice import Refused, is_environment, registry_salon
from gateway.pipeline import dlq
from gateway.pipeline.redis_client import connect_redis
from gateway.settings import Settings

EXIT_CONFIG = 2


async def run_dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        print("frontdesk: REDIS_URL is required", file=sys.stderr)
        return EXIT_CONFIG
    salon_id = args.salon or settings.salon.profile.id
    try:
        await _check_salon(settings, salon_id, args.action)
    except Refused as refused:
        return refused.report()
    redis = connect_redis(settings.redis_url)
    store = dlq.DeadLetters(redis, salon_id, settings.stream_shards)
    try:
        if args.action == "list":
            return await _list(store, args.limit)
        if args.action == "purge":
            cutoff = datetime.now(UTC) - timedelta(days=args.older_than)
            removed = await store.purge(int(cutoff.timestamp() * 1000))
            print(f"purged {removed} dead letters older than {args.older_than:g} days")
            return 0
        ids = None if args.ids == ["all"] else list(args.ids)
        replayed, missing = await store.replay(ids)
        for letter_id in replayed:
            print(f"replayed {letter_id}")
        for letter_id in missing:
            print(f"no dead letter {letter_id}", file=sys.stderr)
        return 1 if missing else 0
    finally:
        await redis.aclose()


async def _check_salon(settings: Settings, salon_id: str, action: str) -> None:
    """A salon other than the environment's is looked up in the registry: one it does not
    have gets a note (a typo would otherwise read as an empty list) or, to replay, a refusal."""
    if is_environment(settings, salon_id):
        return
    salon = await registry_salon(settings, salon_id, decrypt=False)
    if salon is None and action == "replay":
        raise Refused(f"no salon {salon_id} in the registry: nothing would handle its letters", 1)
    if salon is None:
        print(f"note: no salon {salon_id} in the registry (removed?)", file=sys.stderr)
    elif not salon.enabled and action == "replay":
        print(f"note: salon {salon_id} is disabled: replayed letters wait until it is enabled")


async def _list(store: dlq.DeadLetters, limit: int) -> int:
    letters = await store.newest(limit)
    if not letters:
        print("No dead letters.")
    for letter in letters:
        when = datetime.fromtimestamp(letter.failed_ms / 1000, UTC).isoformat(timespec="seconds")
        print(f"{letter.id}  {when}  {letter.kind:<8} {letter.describe()}")
        print(f"    error: {letter.error} (attempts: {letter.attempts})")
    return 0
