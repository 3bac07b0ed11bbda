"""The :class:`Audit` extension object: one instance, any number of apps."""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import typing as t
import weakref

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from flask import Flask

from .capture import tracking
from .config import AuditConfig
from .config import load_config
from .exceptions import AuditConfigError
from .exceptions import AuditWriteError
from .state import AuditState
from .store import context
from .store import partitions
from .store import recorder
from .store import rows
from .store.immutability import attach_trigger_ddl
from .store.immutability import install_orm_guard
from .store.immutability import retention_days_for_ddl
from .store.models import AuditBase
from .store.models import AuditEvent
from .store.models import TABLE_NAME

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


def _mark_enabled(target: sa.Table, connection: sa.Connection, **kw: t.Any) -> None:
    """Record ``audit.enabled`` as the table is created: the trail's "tracking since"."""
    connection.execute(sa.insert(target), rows.enabled_row(retention_days_for_ddl()))


def _register_tables(metadata: sa.MetaData) -> None:
    """Put flask_audit's tables into the app's metadata so ``db.create_all()`` creates them."""
    for name, source in AuditBase.metadata.tables.items():
        table = metadata.tables.get(name)
        if table is None:
            table = source.to_metadata(metadata)
        if name != TABLE_NAME:
            continue
        for each in (table, source):
            # The months first: the "audit.enabled" row needs one to land in.
            if not sa.event.contains(each, "after_create", partitions.make_after_create):
                sa.event.listen(each, "after_create", partitions.make_after_create, insert=True)
                sa.event.listen(each, "before_create", partitions.refuse_other_dialects)
            attach_trigger_ddl(each)
            if not sa.event.contains(each, "after_create", _mark_enabled):
                sa.event.listen(each, "after_create", _mark_enabled)


def _trail_metadata(db: SQLAlchemy, bind: str | None) -> sa.MetaData:
    """The metadata ``db.create_all()`` creates the trail's tables from: ``AUDIT_BIND``'s, if set."""
    if bind is None:
        return db.metadata
    return db._make_metadata(bind)  # get or create, as Flask-SQLAlchemy's models with a bind key do


#: Tracked fields that read as a role change (``role.updated``) unless ``field_events`` says otherwise.
ROLE_FIELDS = ("role", "roles", "is_admin")


class Audit:
    """Records an insert-only audit trail for a Flask app.

    .. code-block:: python

        db = SQLAlchemy(model_class=Base)
        audit = Audit(app, db=db)     # or Audit(db=db), then audit.init_app(app)

    :param app: the app to set up now; leave it out with the app factory pattern.
    :param db: the app's Flask-SQLAlchemy object; the ``audit_event`` table joins its
        metadata, so ``db.create_all()`` creates it, triggers included.

    .. versionadded:: 0.1
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None) -> None:
        self._db = db
        self._states: weakref.WeakKeyDictionary[Flask, AuditState] = weakref.WeakKeyDictionary()
        self._tracked: dict[type, tracking.TrackSpec] = {}
        if app is not None:
            self.init_app(app, db=db)

    def __repr__(self) -> str:
        apps = ", ".join(sorted(app.name for app in self._states.keys()))
        return f"<Audit apps=[{apps}]>"

    def init_app(self, app: Flask, *, db: SQLAlchemy | None = None) -> None:
        """Read the ``AUDIT_*`` settings, register the table, CLI and receivers on ``app``.

        :raises RuntimeError: the app already has an ``Audit`` instance.
        :raises AuditConfigError: no ``db`` was given, or a setting is invalid.
        """
        if "audit" in app.extensions:
            raise RuntimeError(
                "An 'Audit' instance has already been registered on this Flask app."
                " Import and use that instance instead."
            )
        db = db or self._db
        if db is None:
            raise AuditConfigError(
                "Audit needs the app's Flask-SQLAlchemy object: Audit(app, db=db) or"
                " audit.init_app(app, db=db)."
            )
        config = load_config(app)
        _register_tables(_trail_metadata(db, config.bind))
        install_orm_guard()
        recorder.install_session_hooks()
        state = self._states[app] = AuditState(config=config, db=db, audit=self)
        weakref.finalize(app, state.writer.dispose)  # the writer's connections close with the app
        app.extensions["audit"] = self

        from . import capture
        from .admin import views
        from .checks import log_once as log_start_up_checks
        from .cli import audit_cli
        from .compliance import connect as connect_compliance
        from .integrity.autoseal import connect_auto_seal

        app.cli.add_command(audit_cli)
        app.before_request(log_start_up_checks)
        views.register(app, config)
        capture.connect(app, self)
        connect_auto_seal(app, config)
        connect_compliance(app)

    def _state(self, app: Flask | None = None) -> AuditState:
        app = app or current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return self._states[app]
        except KeyError:
            raise AuditConfigError(
                f"The app {app.name!r} is not registered with this Audit instance."
                " Did you forget to call 'audit.init_app(app)'?"
            ) from None

    @property
    def config(self) -> AuditConfig:
        """The resolved settings of the current app."""
        return self._state().config

    def record(
        self,
        event_type: str,
        *,
        activity: str | None = None,
        entity: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        team: str | None = rows.CURRENT,
        tenant_id: str | None = rows.CURRENT,
        target: tuple[str, t.Any] | None = None,
        details: c.Mapping[str, t.Any] | None = None,
        actor: t.Any = rows.CURRENT,
        actor_email: str | None = rows.CURRENT,
        occurred_at: dt.datetime | None = None,
        session: sa_orm.Session | sa_orm.scoped_session[t.Any] | None = None,
        ip: str | None = rows.CURRENT,
        user_agent: str | None = rows.CURRENT,
        request_id: str | None = rows.CURRENT,
    ) -> AuditEvent:
        """Record one event and return it. The only way events are written.

        Actor, IP address, user agent, request id, team and tenant come from the current
        request (the system actor outside one) unless passed here. Entity, action and
        outcome come from the taxonomy for documented event types; a custom type passes
        ``entity`` and ``action``. Secrets in ``details`` are masked; long text is cut.

        :param event_type: ``"<entity>.<verb>"``, such as ``"role.updated"``.
        :param activity: the sentence the admin page shows.
        :param target: ``(type, id)`` of what was acted on.
        :param actor: a user object to record instead of ``current_user``; ``None`` for nobody.
        :param session: join this session's transaction instead of committing on its own;
            the event is then stored, or not, with the session's commit or rollback.
        :param ip: the client address, for an event recorded after its request (a
            background job keeps the request's own); likewise ``user_agent`` and ``request_id``.
        :raises UnknownEventTypeError: an undocumented type without ``entity`` and ``action``.
        :raises AuditWriteError: the event could not be stored (the database refused it, no
            connection was free in time, the team or tenant loader raised) and the policy is
            ``"raise"``; under ``"spool"`` it is kept in the spool instead.
        """
        state = self._state()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            row = rows.build_row(
                state.config,
                event_type,
                activity=activity,
                entity=entity,
                action=action,
                outcome=outcome,
                team=team,
                tenant_id=tenant_id,
                target=target,
                details=details,
                actor=actor,
                actor_email=actor_email,
                occurred_at=occurred_at,
                ip=ip,
                user_agent=user_agent,
                request_id=request_id,
            )
        except rows.UnresolvedContext as err:
            if session is not None:
                raise AuditWriteError(
                    f"The audit event {event_type!r} could not be recorded: {err}."
                ) from err
            return recorder.refuse(app, state.config, err.row, err.reason, err)
        return recorder.write(app, state, row, session)

    def acting_as(self, user: t.Any) -> t.ContextManager[None]:
        """Record the events of a ``with`` block as done by ``user``, signed in or not.

        For actions taken before the user's first sign-in (accepting an invitation, so
        that the tracked ``user.created`` names them) or on someone's behalf (a job, a
        command). The actor is read as :meth:`record` reads ``current_user``.
        """
        return context.acting_as(user)

    def track(
        self,
        model: type,
        *,
        entity: str,
        fields: c.Sequence[str],
        event_prefix: str | None = None,
        label: c.Callable[[t.Any], str] | None = None,
        field_events: c.Mapping[str, str] | None = None,
    ) -> None:
        """Record ORM inserts, updates and deletes of ``model`` as events.

        Events are ``<prefix>.created``, ``<prefix>.updated`` (with before and after of the
        changed ``fields``; other columns are ignored) and ``<prefix>.deleted``, written in
        the same transaction as the change. A field listed in ``field_events`` gets its own
        event type instead: a tracked ``role``, ``roles`` or ``is_admin`` field yields
        ``role.updated`` by default. A collection (many-to-many) field is shown as whole sets,
        the sorted labels of its members before and after. An ORM bulk ``update()`` that
        sets a tracked field, and a bulk ``delete()``, on ``model`` raise
        :class:`~flask_audit.exceptions.TrackedBulkStatementError`.

        :param entity: the Entity column, such as ``"Team"``.
        :param event_prefix: defaults to ``entity`` in lower case (``"team"``).
        :param label: ``callable(obj) -> str`` naming the object in sentences; defaults to
            its ``name``, ``email`` or ``title``.
        """
        mapper: sa_orm.Mapper[t.Any] = sa.inspect(model)
        unknown = ", ".join(repr(name) for name in fields if name not in mapper.attrs)
        if unknown:
            raise AuditConfigError(f"{model.__name__} has no mapped attribute {unknown}.")
        events = dict(field_events) if field_events is not None else {}
        if field_events is None:
            events.update((name, "role.updated") for name in ROLE_FIELDS if name in fields)
        self._tracked[model] = tracking.TrackSpec(
            entity=entity,
            fields=tuple(fields),
            prefix=event_prefix or entity.lower().replace(" ", "_"),
            label=label or tracking.default_label,
            field_events=events,
        )
        tracking.load_old_values(model, fields)
        tracking.install()
