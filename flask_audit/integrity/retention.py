"""Retention: remove what is older than the window, in short batches, and say so in the chain.

Rules, in the order :func:`prune` applies them:

- Never inside the window: ``days`` below ``AUDIT_RETENTION_DAYS`` is refused (the triggers
  would refuse the rows anyway). The cutoff is ``now - days`` in UTC, where the rows' times
  live; ``AUDIT_TIMEZONE`` is for display only, so a daylight-saving change cannot move it.
- The newest event always stays, so ids never restart (SQLite reuses the highest rowid).
- Unsealed trails (no key, no seals): every event older than the cutoff goes.
- Sealed trails: prune first seals what has committed, then removes only an id prefix of
  the sealed events: up to the first event inside the window. Older events behind a younger
  one wait for it (``held_back``). Before deleting, it appends a ``prune`` link saying "every
  id up to N is removed on purpose", so :func:`flask_audit.integrity.verification.verify` still passes and
  any other deletion still fails. A cutoff that falls inside a sealed range is fine: verify
  accepts the missing ids up to N and checks the rest of that range event by event. If
  prune stops half-way, the survivors up to N are checked too, and the next run finishes.
- Deletes run in short transactions of ``batch_size`` rows over id ranges (the primary key,
  with the time condition kept), so other writers insert between batches.
- An account that may not delete events itself (the runtime role of
  :mod:`flask_audit.integrity.grants`) deletes each batch through the owner's prune routine,
  found by asking the database, not by a setting. That routine deletes on a sealed trail
  only up to the newest prune link's ``last_id``, so such a run removes only the id prefix;
  old events above it wait for the younger ones before them (``held_back``).
- Tenants may keep their events longer (``AUDIT_TENANT_RETENTION_DAYS``, see
  :mod:`flask_audit.compliance.settings`): an event of such a tenant inside its own window
  counts as inside the window, here as everywhere above (the prefix stops before it, and
  the prune routine, which knows no tenants, only deletes the prefix).
- On a trail partitioned by month (``AUDIT_PG_PARTITIONS``), whole months before the cutoff
  go first as tables (:mod:`flask_audit.integrity.months`), each with its archive when one is
  asked for; the rest (months only partly old, the ``DEFAULT`` partition, months that must
  stay whole) takes the batched path above.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import os
import typing as t

import sqlalchemy as sa

from ..config import AuditConfig
from ..exceptions import AuditConfigError
from ..exceptions import AuditError
from ..store import partitions
from ..store.models import audit_event_table
from ..store.models import TABLE_NAME
from . import grants
from . import months as monthly
from . import sealing
from .archive import write_archive
from .witness import configured_witness
from .witness import SealWitness

if t.TYPE_CHECKING:
    from ..compliance.settings import TenantDays
    from ..state import Recorder

DEFAULT_BATCH_SIZE = 2000
_EVENTS = audit_event_table

#: Called after each batch with (events deleted so far, events to delete).
Progress = c.Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What :func:`prune` did, or with ``dry_run`` would do."""

    cutoff: dt.datetime  #: events before this instant (UTC) were old enough
    days: int
    count: int  #: events deleted (counted, with ``dry_run``)
    dry_run: bool
    upper: int  #: the highest id prune considered
    #: old events kept: the newest event, ones committed after prune's seal, and (through the
    #: prune routine) ones behind a younger event
    held_back: int
    sealed: bool  #: prune links recorded the removal in the seal chain
    archive: str | None  #: the archive written, if any
    #: the tenants whose longer windows kept some of the old events, with their days
    tenant_days: c.Mapping[str | None, int] = dataclasses.field(default_factory=dict)
    #: on a partitioned trail, the months before the cutoff: dropped (or, with ``dry_run``,
    #: to be dropped) when their ``kept`` is ``None``, else kept for that reason
    months: tuple[monthly.Month, ...] = ()


def cutoff_for(days: int, now: dt.datetime | None = None) -> dt.datetime:
    """``now - days`` in UTC: exact 24-hour days, whatever the display time zone does."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware; use datetime.now(timezone.utc).")
    return now.astimezone(dt.timezone.utc) - dt.timedelta(days=days)


def check_days(days: int, retention_days: int) -> int:
    """``days`` if pruning that far back leaves the retention window whole."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive whole number, not {days!r}.")
    if days < retention_days:
        raise ValueError(
            f"Refusing to prune inside the retention window: {days} days is less than"
            f" AUDIT_RETENTION_DAYS ({retention_days}); events younger than that are never deleted."
        )
    return days


#: What a longer tenant window keeps of the events older than the cutoff (``None``: nothing).
Keep = sa.ColumnElement[bool] | None


def _old(cutoff: dt.datetime, keep: Keep = None) -> sa.ColumnElement[bool]:
    """Old enough to go: older than the cutoff and outside every longer tenant window."""
    older = _EVENTS.c.occurred_at < cutoff
    return older if keep is None else sa.and_(older, sa.not_(keep))


def _window(
    cutoff: dt.datetime, upper: int, after: int | None = None, keep: Keep = None
) -> sa.ColumnElement[bool]:
    condition = sa.and_(_old(cutoff, keep), _EVENTS.c.id <= upper)
    return condition if after is None else sa.and_(condition, _EVENTS.c.id > after)


def tenant_windows(
    engine: sa.Engine, cutoff: dt.datetime, days: int, tenant_days: TenantDays | None
) -> dict[str | None, int]:
    """The tenants with events older than the cutoff that keep them longer than ``days``."""
    if tenant_days is None:
        return {}
    with engine.connect() as conn:
        tenants = list(
            conn.scalars(sa.select(_EVENTS.c.tenant_id).where(_EVENTS.c.occurred_at < cutoff).distinct())
        )
    longer = {}
    for tenant in tenants:
        own = tenant_days(tenant)
        if own is not None and (isinstance(own, bool) or not isinstance(own, int) or own < 1):
            raise ValueError(
                f"AUDIT_TENANT_RETENTION_DAYS gives tenant {tenant!r} {own!r}: not a number of days."
            )
        if own is not None and own > days:
            longer[tenant] = own
    return longer


def _keep(longer: c.Mapping[str | None, int], now: dt.datetime | None) -> Keep:
    """Never NULL, so that ``NOT keep`` leaves events without a tenant to the plain cutoff."""
    by_days: dict[int, list[str | None]] = {}
    for tenant, own in longer.items():
        by_days.setdefault(own, []).append(tenant)
    terms = []
    for own, tenants in sorted(by_days.items()):
        named = sorted(tenant for tenant in tenants if tenant is not None)
        who = []
        if named:
            who.append(sa.and_(_EVENTS.c.tenant_id.is_not(None), _EVENTS.c.tenant_id.in_(named)))
        if None in tenants:
            who.append(_EVENTS.c.tenant_id.is_(None))
        terms.append(sa.and_(sa.or_(*who), _EVENTS.c.occurred_at >= cutoff_for(own, now)))
    return sa.or_(*terms) if terms else None


@dataclasses.dataclass(frozen=True)
class _Plan:
    upper: int  # the highest id prune may remove
    prefix: int  # every id up to this one is removed (sealed trails)
    total: int  # events to remove
    first: int | None  # the lowest of them
    held: int  # old events kept: the newest event, or ones committed after this run's seal


def _plan(
    engine: sa.Engine,
    cutoff: dt.datetime,
    chained: bool,
    assume_sealed: bool,
    prefix_only: bool = False,
    keep: Keep = None,
) -> _Plan:
    """What to remove. ``assume_sealed``: plan as if everything committed were sealed;
    ``prefix_only``: on a sealed trail, or with tenants kept longer, no id above the prefix
    (what the prune routine, which knows no tenants, may be trusted with)."""
    with engine.connect() as conn:
        top = int(conn.scalar(sa.select(sa.func.max(_EVENTS.c.id))) or 0)
        upper = prefix = top - 1
        if chained:
            upper = min(upper, top if assume_sealed else sealing.last_sealed_id(conn) or 0)
        if chained or (prefix_only and keep is not None):
            staying = sa.not_(_old(cutoff, keep))
            young = conn.scalar(sa.select(sa.func.min(_EVENTS.c.id)).where(staying))
            prefix = upper if young is None else min(upper, int(young) - 1)
            upper = prefix if prefix_only else upper
        total, first = conn.execute(
            sa.select(sa.func.count(), sa.func.min(_EVENTS.c.id)).where(_window(cutoff, upper, keep=keep))
        ).one()
        older = sa.select(sa.func.count()).where(_old(cutoff, keep), _EVENTS.c.id > upper)
        held = conn.scalar(older) or 0
    return _Plan(upper, prefix, int(total), None if first is None else int(first), int(held))


def _record_removal(
    engine: sa.Engine,
    key: bytes,
    cutoff: dt.datetime,
    plan: _Plan,
    witness: SealWitness | None,
    keep: Keep = None,
) -> None:
    """Append the prune links: the prefix, and the ids above it that go too."""
    with engine.connect() as conn:
        above_prefix = _window(cutoff, plan.upper, plan.prefix, keep)
        query = sa.select(_EVENTS.c.id).where(above_prefix).order_by(_EVENTS.c.id)
        above = [int(event_id) for event_id in conn.scalars(query)]
    sealing.append_prune(
        engine,
        key,
        first_id=plan.first,
        last_id=plan.prefix,
        count=plan.total,
        cutoff=cutoff,
        removed=above,
        witness=witness,
    )


def _delete(
    engine: sa.Engine,
    cutoff: dt.datetime,
    upper: int,
    batch: int,
    total: int,
    progress: Progress | None,
    direct: bool = True,
    keep: Keep = None,
) -> int:
    """Delete in id ranges of ``batch`` rows, each in its own short transaction; ``direct``
    with a DELETE of its own, else through the owner's prune routine."""
    done, last = 0, None
    while True:
        window = _window(cutoff, upper, last, keep)
        with engine.begin() as conn:
            edge = sa.select(_EVENTS.c.id).where(window).order_by(_EVENTS.c.id).offset(batch - 1).limit(1)
            high = conn.scalar(edge)
            if not direct:
                done += grants.prune_batch(conn, last, upper if high is None else int(high), cutoff)
            else:
                batch_window = window if high is None else sa.and_(window, _EVENTS.c.id <= high)
                done += conn.execute(sa.delete(_EVENTS).where(batch_window)).rowcount
        if progress is not None:
            progress(done, total)
        if high is None:
            return done
        last = int(high)


def prune(
    engine: sa.Engine,
    config: AuditConfig,
    *,
    days: int | None = None,
    dry_run: bool = False,
    archive: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
    audit: Recorder | None = None,
    tenant_days: TenantDays | None = None,
    require_archive: bool = False,
) -> PruneResult:
    """Delete the events older than ``days`` (default ``AUDIT_RETENTION_DAYS``); see the module.

    :param archive: write the events to this gzip JSON-lines file and check it first.
    :param audit: record ``audit.pruned`` through it (needs an app context); the CLI
        passes the app's instance, so the system actor is recorded.
    :param tenant_days: ``callable(tenant_id) -> days or None``: a tenant's longer window
        (one shorter than ``days`` changes nothing); by default the current app's
        ``AUDIT_TENANT_RETENTION_DAYS``. Their events inside it stay.
    :param require_archive: nothing goes unarchived: without ``archive`` a dry run lists the
        months as kept, and a real run is refused.
    :raises ValueError: ``days`` inside the window, a bad batch size, ``archive`` with
        ``dry_run``.
    :raises AuditConfigError: the trail is sealed but ``AUDIT_SEAL_KEY`` is not set.
    :raises AuditError: the archive could not be written, the table changed under it, or the
        account may neither delete events nor call the prune routine.
    """
    days = check_days(config.retention_days if days is None else days, config.retention_days)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, not {batch_size!r}.")
    if archive is not None and dry_run:
        raise ValueError("An archive holds what prune deletes: it cannot be combined with a dry run.")
    if archive is not None and os.path.exists(archive):
        raise AuditError(f"The archive {archive} already exists: prune never overwrites an archive.")
    if require_archive and archive is None and not dry_run:
        raise ValueError("An archive is required before events are pruned: give prune an archive file.")
    cutoff = cutoff_for(days, now)
    if tenant_days is None:
        from ..compliance.settings import current_tenant_days

        tenant_days = current_tenant_days()
    longer = tenant_windows(engine, cutoff, days, tenant_days)
    keep = _keep(longer, now)
    with engine.connect() as conn:
        sealed_before = sealing.last_sealed_id(conn) is not None
    if sealed_before and not config.seal_key and not dry_run:
        raise AuditConfigError(
            "The audit trail is sealed, so prune must record what it removes in the seal chain:"
            " set AUDIT_SEAL_KEY to the key the seals were made with."
        )
    chained = sealed_before or config.seal_key is not None
    direct = grants.may_delete_events(engine)
    if not direct:
        grants.check_prune_routine(engine, cutoff)
    if chained and config.seal_key is not None and not dry_run:
        sealing.seal(engine, config.seal_key, witness=configured_witness(config))
    assume_sealed = dry_run and config.seal_key is not None
    unarchived = (
        "it must be archived first and prune was given no archive"
        if require_archive and archive is None
        else None
    )
    month_result = _prune_months(
        engine, config, cutoff, keep, chained and not assume_sealed, dry_run, archive, batch_size, unarchived
    )
    plan = _plan(engine, cutoff, chained, assume_sealed, prefix_only=not direct, keep=keep)
    # A dry run drops nothing, so the plan above still counts the months' events.
    gone = 0 if dry_run else sum(month.count for month in month_result if month.kept is None)
    result = PruneResult(
        cutoff, days, plan.total + gone, dry_run, plan.upper, plan.held, False, None, longer, month_result
    )
    if gone and chained and not dry_run:
        result = dataclasses.replace(result, sealed=True)
    if dry_run:
        return result
    archived = None
    if archive is not None:  # even when empty: a scheduled run always leaves its file
        archived = write_archive(engine, archive, _window(cutoff, plan.upper, keep=keep), batch_size)
        result = dataclasses.replace(result, archive=os.fspath(archive))
    if plan.total:
        if chained:
            key = sealing.require_key(config.seal_key, "prune a sealed trail")
            _record_removal(engine, key, cutoff, plan, configured_witness(config), keep)
            result = dataclasses.replace(result, sealed=True)
        deleted = _delete(engine, cutoff, plan.upper, batch_size, plan.total, progress, direct, keep)
        result = dataclasses.replace(result, count=deleted + gone)
        if archived is not None and archived != deleted:
            raise AuditError(
                f"Pruned {deleted} events but the archive holds {archived}: another process changed"
                " audit_event while prune ran. Both are kept; check the archive."
            )
    if audit is not None:
        _record(audit, result)
    return result


def _prune_months(
    engine: sa.Engine,
    config: AuditConfig,
    cutoff: dt.datetime,
    keep: Keep,
    chained: bool,
    dry_run: bool,
    archive: str | os.PathLike[str] | None,
    batch_size: int,
    unarchived: str | None,
) -> tuple[monthly.Month, ...]:
    """Drop the whole months before the cutoff (see :mod:`flask_audit.integrity.months`)."""
    if engine.dialect.name != "postgresql":
        return ()
    if not dry_run:  # the months ahead too, as `flask audit partitions` makes them
        with engine.begin() as conn:
            if partitions.is_partitioned(conn) and monthly.owns(conn, TABLE_NAME):
                partitions.ensure(conn)
    with engine.connect() as conn:
        sealed_up_to = (sealing.last_sealed_id(conn) or 0) if chained else None
        months = monthly.plan(conn, cutoff, keep=keep, sealed_up_to=sealed_up_to, archive_missing=unarchived)
    if dry_run:
        return tuple(months)
    done = []
    for month in months:
        if month.kept is None and archive is not None:
            path = monthly.write_month_archive(engine, archive, month, batch_size, cutoff, write_archive)
            month = dataclasses.replace(month, archive=os.fspath(path))
        if month.kept is None:
            if chained:
                key = sealing.require_key(config.seal_key, "prune a sealed trail")
                monthly.record_removal(engine, key, month, cutoff, configured_witness(config))
            monthly.detach_and_drop(engine, month)
        done.append(month)
    return tuple(done)


def _record(audit: Recorder, result: PruneResult) -> None:
    when = result.cutoff.strftime("%Y-%m-%d %H:%M:%S UTC")
    details = {
        "cutoff": result.cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "days": result.days,
        "count": result.count,
        "up_to_id": result.upper if result.count else None,
        "archive": result.archive,
    }
    dropped = [month.name for month in result.months if month.kept is None]
    if dropped:
        details["months"] = dropped
    if result.tenant_days:
        details["tenant_days"] = {
            "" if tenant is None else tenant: own for tenant, own in result.tenant_days.items()
        }
    audit.record(
        "audit.pruned", activity=f"Pruned {result.count} audit events older than {when}", details=details
    )
