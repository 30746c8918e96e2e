"""The write concern every Chillout write uses: `MONGO_WRITE_CONCERN` (contract §2).

An `ok: true` ack, a REST 200 and a broadcast may only follow a write that is durable, so
the default asks the database to journal the write before answering (`j: true`). The
embedded server (secantusdb) honours it: with `j: true` every acknowledged insert survived
a SIGKILL of the database; with the driver's default (`w: 1`, no `j`) none did (30 of 30
lost, measured; see /work/notes/hardening-design.md). Cost there: one fsync per write
command, so a grouped `insert_many` (rooms/writes.py) pays one flush per group.

* `journaled` (default): `{j: true}`; `w` is left to the deployment's default, which is
  1 on a standalone server and `majority` on a replica set of MongoDB 5.0 or later, so
  this never weakens what the operator configured.
* `majority`: `{w: "majority", j: true}` for replica sets: a write acknowledged by the
  majority, journaled, cannot be rolled back by a failover. With a `wtimeout` (the
  driver's timeout in ms) so that a set without a reachable majority fails the write
  instead of hanging it; a write that timed out may still land later.
* `fast`: `{w: 1, j: false}`: answered from memory; a database crash may lose the last
  moments of acknowledged writes. For benchmarks and throw-away deployments only.

Pure: nothing here talks to a database.
"""

from __future__ import annotations

from pymongo import WriteConcern

JOURNALED = "journaled"
MAJORITY = "majority"
FAST = "fast"
WRITE_CONCERN_CHOICES = (JOURNALED, MAJORITY, FAST)


def write_concern_from_setting(name: str, *, wtimeout_ms: int | None = None) -> WriteConcern:
    """The `WriteConcern` for a `MONGO_WRITE_CONCERN` value (case and spaces ignored).

    `wtimeout_ms` applies to `majority` only (the other two never wait for other members).
    Raises `ValueError` naming the choices for anything else.
    """
    choice = name.strip().lower() if isinstance(name, str) else name
    if choice == JOURNALED:
        return WriteConcern(j=True)
    if choice == MAJORITY:
        return WriteConcern(w="majority", j=True, wtimeout=wtimeout_ms or None)
    if choice == FAST:
        return WriteConcern(w=1, j=False)
    raise ValueError(f"MONGO_WRITE_CONCERN must be one of {', '.join(WRITE_CONCERN_CHOICES)}, not {name!r}")


def write_concern_client_options(concern: WriteConcern) -> dict:
    """The same write concern as `MongoClient` / `AsyncMongoClient` / `mongoengine.connect`
    keyword options, so that every database handle of a client inherits it."""
    document = concern.document
    options: dict = {}
    if "w" in document:
        options["w"] = document["w"]
    if "j" in document:
        options["journal"] = document["j"]
    if "wtimeout" in document:
        options["wTimeoutMS"] = document["wtimeout"]
    return options
