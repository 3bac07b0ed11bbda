"""``audit.track()``: ORM inserts, updates and deletes of a host model become events.

Events are written on the session's own connection during the flush, so they share the
business change's transaction: no change commits without its event, and a rolled-back
change leaves none. ORM bulk ``update()``/``delete()`` statements on a tracked model are
refused, because they change rows the session never sees.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from flask import has_app_context

from ..exceptions import AuditWriteError
from ..exceptions import TrackedBulkStatementError
from ..store import recorder
from ..store.rows import build_row
from ..store.rows import UnresolvedContext
from ..taxonomy import EVENT_TYPES
from .names import nice

Label = c.Callable[[t.Any], str]


@dataclasses.dataclass(frozen=True)
class TrackSpec:
    """How one model's changes read as events."""

    entity: str
    fields: tuple[str, ...]
    prefix: str
    label: Label
    field_events: c.Mapping[str, str]

    def event_type(self, verb: str) -> str:
        return f"{self.prefix}.{verb}"


def default_label(obj: t.Any) -> str:
    for attr in ("name", "email", "title"):
        value = getattr(obj, attr, None)
        if value:
            return str(value)
    return f"#{_primary_key(obj) or 'new'}"


def _primary_key(obj: t.Any) -> str | None:
    # During the flush a new object has its key in its attributes, not yet in its identity.
    key = sa.inspect(obj).mapper.primary_key_from_instance(obj)
    return None if any(part is None for part in key) else ",".join(str(part) for part in key)


def _labels(objects: c.Iterable[t.Any]) -> list[str]:
    return sorted(default_label(each) for each in objects)


def _value(obj: t.Any, name: str) -> t.Any:
    """A tracked field as an event shows it: a related object by its label, a collection as
    the sorted labels of its members, a column as it is."""
    value = getattr(obj, name, None)
    prop = sa.inspect(obj).mapper.attrs[name]
    if isinstance(prop, sa_orm.RelationshipProperty):
        return _labels(value or ()) if prop.uselist else (None if value is None else default_label(value))
    return value


def _changes(obj: t.Any, fields: c.Iterable[str]) -> dict[str, list[t.Any]]:
    """Before and after of each changed field; a collection as whole sets (sorted labels)."""
    state = sa.inspect(obj)
    out: dict[str, list[t.Any]] = {}
    for name in fields:
        history = state.attrs[name].history
        if not history.has_changes():
            continue
        prop = state.mapper.attrs[name]
        before: t.Any
        after: t.Any
        if isinstance(prop, sa_orm.RelationshipProperty) and prop.uselist:
            kept = list(history.unchanged or ())
            before = _labels([*kept, *(history.deleted or ())])
            after = _labels([*kept, *(history.added or ())])
        else:
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if isinstance(prop, sa_orm.RelationshipProperty):
                before, after = (None if v is None else default_label(v) for v in (before, after))
        if before != after:
            out[name] = [before, after]
    return out


def _shown(value: t.Any) -> str:
    """A value in a sentence: ``"Admin, Member"`` for a set of roles."""
    if isinstance(value, list):
        return ", ".join(nice(each) for each in value) or "none"
    return nice(value)


def _rows_for(spec: TrackSpec, obj: t.Any, verb: str, config: t.Any) -> list[dict[str, t.Any]]:
    kind = spec.entity.lower()
    target = (spec.prefix, _primary_key(obj))
    label = spec.label(obj)
    if verb in ("created", "deleted"):
        values = {name: _value(obj, name) for name in spec.fields}
        sentence = f"{'Created' if verb == 'created' else 'Deleted'} {kind} {label}"
        return [_row(config, spec, spec.event_type(verb), sentence, target, {"values": values})]
    changes = _changes(obj, spec.fields)
    rows = []
    for name, event_type in spec.field_events.items():
        if name in changes:
            before, after = changes.pop(name)
            sentence = f"Changed {name} of {label} from {_shown(before)} to {_shown(after)}"
            rows.append(_row(config, spec, event_type, sentence, target, {"before": before, "after": after}))
    if changes:
        if set(changes) == {"name"}:
            sentence = f"Renamed {kind} {changes['name'][0]} to {changes['name'][1]}"
        else:
            sentence = f"Updated {kind} {label}: {', '.join(sorted(changes))}"
        rows.append(_row(config, spec, spec.event_type("updated"), sentence, target, {"changes": changes}))
    return rows


def _row(
    config: t.Any, spec: TrackSpec, event_type: str, sentence: str, target: tuple[str, t.Any], details: t.Any
) -> dict[str, t.Any]:
    custom = event_type not in EVENT_TYPES
    verb = event_type.rpartition(".")[2]
    action = {"created": "create", "deleted": "delete"}.get(verb, "update")
    return build_row(
        config,
        event_type,
        activity=sentence,
        entity=spec.entity if custom else None,
        action=action if custom else None,
        target=target,
        details=details,
    )


def _tracked(session: sa_orm.Session) -> tuple[t.Any, dict[type, TrackSpec]] | None:
    if not has_app_context():
        return None
    audit = current_app.extensions.get("audit")
    specs: dict[type, TrackSpec] = getattr(audit, "_tracked", {})
    if not specs:
        return None
    return audit, specs


def _spec_for(specs: dict[type, TrackSpec], model: type) -> TrackSpec | None:
    for cls in model.__mro__:
        if cls in specs:
            return specs[cls]
    return None


def _after_flush(session: sa_orm.Session, flush_context: t.Any) -> None:
    found = _tracked(session)
    if found is None:
        return
    audit, specs = found
    config = audit.config
    if not config.enabled:
        return
    rows: list[dict[str, t.Any]] = []
    for verb, objects in (("created", session.new), ("updated", session.dirty), ("deleted", session.deleted)):
        for obj in objects:
            spec = _spec_for(specs, type(obj))
            if spec is not None and (verb != "updated" or session.is_modified(obj)):
                try:
                    rows.extend(_rows_for(spec, obj, verb, config))
                except UnresolvedContext as err:  # no change commits without its event
                    raise AuditWriteError(f"The change could not be recorded: {err}.") from err
    if rows:
        recorder.write_in_flush(current_app._get_current_object(), session, rows)  # type: ignore[attr-defined]


def _set_columns(state: sa_orm.ORMExecuteState) -> set[str] | None:
    """The columns a bulk UPDATE sets, or ``None`` when that cannot be told."""
    values = getattr(state.statement, "_values", None) or dict(
        getattr(state.statement, "_ordered_values", ()) or ()
    )
    if not values or state.parameters:  # executemany parameters may set anything
        return None
    return {str(getattr(key, "key", key)) for key in values}


def _refuse_bulk(state: sa_orm.ORMExecuteState) -> None:
    """Refuse a bulk statement that would change a tracked field without its event.

    A bulk UPDATE that sets no tracked field goes through (libraries run such statements
    on user tables, Flask-AppBuilder's sign-in timing guard among them); a bulk DELETE, or
    an UPDATE of a tracked field, is refused.
    """
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    found = _tracked(state.session)
    spec = None if found is None else _spec_for(found[1], state.bind_mapper.class_)
    if spec is None:
        return
    columns = _set_columns(state) if state.is_update else None
    if columns is not None and not columns & set(spec.fields):
        return
    raise TrackedBulkStatementError(
        f"A bulk {'UPDATE' if state.is_update else 'DELETE'} on the tracked model"
        f" {state.bind_mapper.class_.__name__} would change rows without audit events. Change the"
        " objects through the session, or record the change with audit.record()."
    )


def _noop_set(target: t.Any, value: t.Any, oldvalue: t.Any, initiator: t.Any) -> None:
    """A no-op listener, registered only for its ``active_history``."""


def load_old_values(model: type, fields: c.Iterable[str]) -> None:
    """Make the ORM load a tracked field's old value before it is replaced, even when expired.

    Without it, a change made after a commit (which expires attributes) has no "before".
    """
    for name in fields:
        attribute = getattr(model, name)
        if not sa.event.contains(attribute, "set", _noop_set):
            sa.event.listen(attribute, "set", _noop_set, active_history=True)


def install() -> None:
    """Listen to every session once; the handlers look up the current app's tracked models."""
    if not sa.event.contains(sa_orm.Session, "after_flush", _after_flush):
        sa.event.listen(sa_orm.Session, "after_flush", _after_flush)
        sa.event.listen(sa_orm.Session, "do_orm_execute", _refuse_bulk)
