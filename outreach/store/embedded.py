"""The embedded store: in-process fakeredis, kept in a file between CLI commands.

Without ``OUTREACH_REDIS_URL`` every command works on an in-process fakeredis.
So that ``outreach customers import`` then ``outreach emit`` then ``outreach
schedule list`` see each other's work, the keys are saved to one file after
each command and loaded before the next. One process at a time holds it; for
several processes at once (the Procfile), use a real Redis.
"""

from __future__ import annotations

import fcntl
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fakeredis

from ..errors import OutreachError

#: Where the embedded store is kept, relative to the working directory.
DEFAULT_STATE_FILE = Path(".outreach") / "embedded.pickle"


def _load(client: fakeredis.FakeRedis, path: Path) -> None:
    if not path.exists():
        return
    with path.open("rb") as fh:
        rows = pickle.load(fh)
    pipe = client.pipeline(transaction=False)
    for key, ttl, value in rows:
        pipe.restore(key, max(ttl, 0), value, replace=True)
    pipe.execute()


def _save(client: fakeredis.FakeRedis, path: Path) -> None:
    rows = []
    for key in client.scan_iter(count=1000):
        value = client.dump(key)
        if value is None:
            continue
        ttl = client.pttl(key)
        rows.append((key, ttl if ttl > 0 else 0, value))
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(rows, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


@contextmanager
def embedded_client(path: Path = DEFAULT_STATE_FILE) -> Iterator[fakeredis.FakeRedis]:
    """A fakeredis loaded from ``path``, saved back when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path.with_suffix(".lock"), "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutreachError(
                f"the embedded store {path} is in use by another outreach process; "
                "set OUTREACH_REDIS_URL to run several processes at once"
            ) from None
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        _load(client, path)
        yield client
        _save(client, path)
    finally:
        lock.close()
