"""A fresh PostgreSQL database per test, on the server CI provides (127.0.0.1:5432)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

SERVER = os.environ.get("ANALYTICS_TEST_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
async def analytics_db() -> AsyncIterator[str]:
    """The URL of an empty database, dropped afterwards; skipped without a server."""
    try:
        admin = await asyncpg.connect(SERVER, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {SERVER} ({type(exc).__name__}): analytics need one")
    name = f"frontdesk_test_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
