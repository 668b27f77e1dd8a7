"""One demo per salon in the demo's database.

Two `frontdesk demo` runs on one machine share the local PostgreSQL's `frontdesk_demo`: each
empties its salon's analytics when it starts, writes its second salon into the registry, and
removes that salon when it stops. With the same salon ids, the second run would wipe the first
one's analytics and, on stopping, take the first one's second salon away. So each run holds a
PostgreSQL advisory lock per salon id it writes, in that database, before it writes anything:
a second run with the same ids is refused with a message saying what to do. The locks are
session-level (PostgreSQL docs, "Advisory Locks": held until released or the session ends),
so a demo killed outright leaves none behind; they are per database (the lock's tag carries
the database's id: `SET_LOCKTAG_INT32(tag, key1, key2)` is `SET_LOCKTAG_ADVISORY(tag,
MyDatabaseId, key1, key2, 2)`, postgres/postgres src/backend/utils/adt/lockfuncs.c), so a
demo on another database never blocks this one. Demos with other salon ids (another
SALON_ID, whose second salon is then `<SALON_ID>-ru`) may run side by side.
"""

from __future__ import annotations

import zlib

import asyncpg


class DemoBusy(Exception):
    """Another demo holds one of this demo's salons in the same database."""

    def __init__(self, database: str, salon_id: str) -> None:
        super().__init__(f"salon {salon_id!r} in the database {database!r} is another demo's")
        self.database = database
        self.salon_id = salon_id

    def advice(self) -> str:
        return (
            f"frontdesk demo: another demo on this machine is running salon {self.salon_id!r} "
            f"in the PostgreSQL database {self.database!r} (its analytics and second salon). "
            "Stop it first (Ctrl+C where it runs), or start this one with another SALON_ID "
            "(its second salon is then <SALON_ID>-ru) and another --port."
        )


def _key(salon_id: str) -> int:
    # A stable 32-bit key per salon id; the two-int form of the lock keeps it apart from
    # other users of advisory locks in the same database.
    return zlib.crc32(salon_id.encode()) - 2**31


# The first of the two 32-bit keys: "fd" + "demo", the namespace of these locks.
_NAMESPACE = 0x6664_6D6F


class DemoHold:
    """The locks of one demo run, on a connection of their own kept open while it runs."""

    def __init__(self, salon_ids: tuple[str, ...]) -> None:
        self.salon_ids = salon_ids
        self.connection: asyncpg.Connection | None = None

    async def claim(self, url: str) -> None:
        """Take every salon's lock in the database at `url`, or raise DemoBusy (taking
        none)."""
        database = url.rsplit("/", 1)[-1]
        connection = await asyncpg.connect(url, timeout=5)
        try:
            for salon_id in self.salon_ids:
                taken = await connection.fetchval(
                    "SELECT pg_try_advisory_lock($1, $2)", _NAMESPACE, _key(salon_id)
                )
                if not taken:
                    raise DemoBusy(database, salon_id)
        except BaseException:
            # Closing the session gives back what was taken.
            await connection.close()
            raise
        self.connection = connection

    async def release(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None
