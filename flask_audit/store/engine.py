"""The engines the audit trail is read and written through.

A standalone event (sign-in, failed sign-in, export) is committed on a connection of its
own while the request may still hold one of the app's. Taken from the app's pool, that
second connection competes with the requests themselves: under load every request holds
one connection and waits for another, and the pool runs dry (SQLAlchemy's ``QueuePool
limit ... reached``). So standalone events use a *writer* engine with a pool of its own,
on the same database by default:

- ``AUDIT_DATABASE_URI``: the writer connects here instead (the same database, through
  an account of its own, for example one that may only insert);
- ``AUDIT_BIND``: the audit tables live in that ``SQLALCHEMY_BINDS`` database, which is
  read and written through it (the writer still gets its own pool);
- ``AUDIT_ENGINE_OPTIONS``: keyword arguments for the writer's ``create_engine``
  (``pool_size``, ``max_overflow``, ``pool_timeout``, ``connect_args`` ...).

An in-memory SQLite database exists once per connection pool, so there the writer is the
app's engine itself.
"""

from __future__ import annotations

import collections.abc as c
import os
import threading
import typing as t
import weakref

import sqlalchemy as sa

from ..config import AuditConfig
from ..exceptions import AuditConfigError

#: The writer's pool: a few connections, each held for one INSERT only; requests that find
#: them all busy wait briefly (never for one of the app's connections).
WRITER_DEFAULTS: dict[str, t.Any] = {"pool_size": 5, "max_overflow": 10, "pool_timeout": 10}

_OWN: weakref.WeakSet[sa.Engine] = weakref.WeakSet()  # engines made here (and so disposed here)


def trail_engine(db: t.Any, config: AuditConfig) -> sa.Engine:
    """The engine of the database that holds the audit tables: reads, seals, prune, export."""
    try:
        if config.bind is not None:
            return t.cast(sa.Engine, db.engines[config.bind])
        return t.cast(sa.Engine, db.engine)
    except KeyError as err:
        raise AuditConfigError(
            f"AUDIT_BIND = {config.bind!r} names no database in SQLALCHEMY_BINDS"
            f" ({', '.join(sorted(k for k in db.engines if k)) or 'none set'})."
        ) from err
    except RuntimeError as err:
        raise AuditConfigError(
            "flask_audit could not get the app's database engine: call db.init_app(app)"
            " (Flask-SQLAlchemy) on this app and set SQLALCHEMY_DATABASE_URI."
        ) from err


def _in_memory(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


class Writer:
    """One app's writer engine, made on first use and made again in a forked worker.

    A pool must not cross ``fork()`` (gunicorn's ``--preload``): the child would share the
    parent's sockets, so the engine remembers the process that made it.
    """

    def __init__(self) -> None:
        self._made: tuple[int, sa.Engine] | None = None
        self._lock = threading.Lock()

    def engine(self, db: t.Any, config: AuditConfig) -> sa.Engine:
        made = self._made
        if made is not None and made[0] == os.getpid():
            return made[1]
        with self._lock:
            made = self._made
            if made is not None and made[0] == os.getpid():
                return made[1]
            if made is not None and made[1] in _OWN:
                made[1].dispose(close=False)  # the parent's connections stay the parent's
            engine = _make_writer(trail_engine(db, config), config)
            self._made = (os.getpid(), engine)
            return engine

    def dispose(self) -> None:
        """Close the writer's own pooled connections (an app being torn down, tests)."""
        made, self._made = self._made, None
        if made is not None and made[0] == os.getpid() and made[1] in _OWN:
            made[1].dispose()


def _make_writer(trail: sa.Engine, config: AuditConfig) -> sa.Engine:
    if config.database_uri is None and _in_memory(trail.url):
        return trail
    url: str | sa.URL = config.database_uri or trail.url
    options: dict[str, t.Any] = {**WRITER_DEFAULTS, **config.engine_options}
    try:
        engine = sa.create_engine(url, **options)
    except (TypeError, sa.exc.ArgumentError) as err:
        raise AuditConfigError(
            f"AUDIT_ENGINE_OPTIONS or AUDIT_DATABASE_URI cannot make the audit writer's engine: {err}"
        ) from err
    if config.database_uri is None:
        _share_connect_listeners(trail, engine)
    _OWN.add(engine)
    return engine


def _share_connect_listeners(app_engine: sa.Engine, writer: sa.Engine) -> None:
    """The app's own ``connect`` listeners on the writer too: pragmas such as SQLite's
    ``journal_mode``, ``synchronous`` or ``busy_timeout``, a session's ``search_path``.

    SQLAlchemy's own listeners (the dialect's set-up) are the writer's already.
    """
    for listener in app_engine.pool.dispatch.connect:
        if not getattr(listener, "__module__", "").startswith("sqlalchemy.") and not sa.event.contains(
            writer, "connect", listener
        ):
            sa.event.listen(writer, "connect", listener)


def options_of(value: t.Any) -> dict[str, t.Any]:
    """``AUDIT_ENGINE_OPTIONS`` checked at start-up: a mapping of ``create_engine`` arguments."""
    if value is None:
        return {}
    if not isinstance(value, c.Mapping):
        raise AuditConfigError(
            f"AUDIT_ENGINE_OPTIONS must be a dict of create_engine() arguments, not {value!r}."
        )
    return dict(value)
