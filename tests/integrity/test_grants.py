"""The runtime role of ``flask audit grants``: it records, reads, seals, verifies, exports and
prunes through the owner's routine, and every attack on the trail is refused to it.

Each test makes the tables as a non-superuser owner, applies the grants, then acts as the
runtime role through an app of its own, on real PostgreSQL and MariaDB servers.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import gzip
import json
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditError
from flask_audit.admin.daycounts import chart_counts
from flask_audit.admin.daycounts import DayCountCache
from flask_audit.cli_grants import grants_command
from flask_audit.export import job_store
from flask_audit.integrity import grants
from flask_audit.integrity import retention
from flask_audit.integrity import sealing
from flask_audit.integrity import verification
from flask_audit.query.filters import AuditFilter
from flask_audit.store import spool
from flask_audit.store.models import day_total_table
from flask_audit.store.models import login_fold_table
from flask_audit.store.rows import build_row

from ..apps import add_user
from ..apps import create_app
from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import writer_of
from ..sealing_fixtures import days_ago
from ..sealing_fixtures import EVENTS
from ..sealing_fixtures import forged
from ..sealing_fixtures import KEY
from ..sealing_fixtures import SEALS
from ..sealing_fixtures import utcnow
from .grants_fixtures import Accounts
from .grants_fixtures import as_admin
from .grants_fixtures import denied
from .grants_fixtures import make_accounts

servers = pytest.mark.backends("postgresql", "mariadb")


@pytest.fixture(scope="module")
def accounts(backend: str, db_url: str) -> c.Iterator[Accounts]:
    yield from make_accounts(backend, db_url)


@dataclasses.dataclass(frozen=True)
class Trail:
    owner: Flask  #: connects as the owner, which made the tables and the grants
    runtime: Flask  #: connects as the runtime role
    accounts: Accounts

    def engine(self, app: Flask | None = None) -> sa.Engine:
        with (app or self.runtime).app_context():
            return db(app or self.runtime).engine


def _close(app: Flask, *, drop: bool = False) -> None:
    with app.app_context():
        database = db(app)
        database.session.remove()
        writer_of(app).writer.dispose()
        try:
            if drop:
                database.drop_all()
        finally:
            for engine in database.engines.values():
                engine.dispose()


@pytest.fixture
def trail(accounts: Accounts, tmp_path: t.Any, request: pytest.FixtureRequest) -> c.Iterator[Trail]:
    marker = request.node.get_closest_marker("audit_config")
    config = {
        "AUDIT_SEAL_KEY": KEY,
        "AUDIT_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "AUDIT_SEAL_WITNESS": str(tmp_path / "witness.jsonl"),
    }
    config.update(marker.kwargs if marker else {})
    owner = create_app(SQLALCHEMY_DATABASE_URI=accounts.url(accounts.owner), **config)
    runtime = create_app(SQLALCHEMY_DATABASE_URI=accounts.url(accounts.runtime), **config)
    try:
        with owner.app_context():
            db(owner).create_all()
            engine = db(owner).engine
            grants.apply(engine, accounts.runtime, audit_of(owner).config.retention_days)
            who = grants.account(engine.dialect.name, accounts.runtime)
            with engine.begin() as conn:  # the app's own tables, as the app would grant them
                conn.exec_driver_sql(f"GRANT SELECT ON app_user TO {who}".replace("%", "%%"))
        yield Trail(owner, runtime, accounts)
    finally:
        _close(runtime)
        _close(owner, drop=True)


def record(app: Flask, count: int = 1, *, occurred_at: dt.datetime | None = None) -> list[int]:
    with app.app_context():
        audit = audit_of(app)
        return [
            audit.record("team.created", details={"n": n}, occurred_at=occurred_at).id for n in range(count)
        ]


def ids(trail: Trail) -> list[int]:
    with trail.engine().connect() as conn:
        return list(conn.scalars(sa.select(EVENTS.c.id).order_by(EVENTS.c.id)))


def verify(trail: Trail) -> verification.VerifyReport:
    return verification.verify(trail.engine(trail.owner), KEY.encode())


def cli(app: Flask, *args: str) -> t.Any:
    return app.test_cli_runner().invoke(args=["audit", *args])


def age_the_trail(trail: Trail, days: float = 120) -> None:
    """Make the table's first rows as old as a trail in use for months (as the owner could)."""
    with forged(trail.owner) as conn:
        conn.execute(sa.update(EVENTS).values(occurred_at=days_ago(days)))


# -- what the runtime role may do ------------------------------------------------------------


@servers
@pytest.mark.audit_config(AUDIT_FAILED_LOGIN_BURST=1)
def test_the_runtime_role_records_reads_seals_verifies_and_exports(trail: Trail, tmp_path: t.Any) -> None:
    app = trail.runtime
    recorded = record(app, 3)
    client = app.test_client()
    for _ in range(3):  # past the burst of 1, the failures are counted in audit_login_fold
        assert client.post("/login", data={"email": "nobody@example.com", "password": "x"}).status_code == 401
    with trail.engine().connect() as conn:
        assert conn.scalar(sa.select(login_fold_table.c.unreported)) == 2
        assert conn.scalar(sa.select(sa.func.count()).select_from(EVENTS)) == 1 + 3 + 1
    with app.app_context():
        row = build_row(audit_of(app).config, "team.deleted", details={"spooled": True})
    spool.append(str(tmp_path / "spool.jsonl"), row)
    assert "Replayed 1 spooled event(s)" in cli(app, "replay").output

    sealed = cli(app, "seal")
    assert sealed.exit_code == 0, sealed.output
    assert sealed.output.startswith("Sealed 6 event(s)")
    verified = cli(app, "verify")
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("Verified 6 sealed event(s)")

    out = tmp_path / "trail.jsonl"
    exported = cli(app, "export", "--out", str(out), "--format", "jsonl")
    assert exported.exit_code == 0, exported.output
    assert set(recorded) <= {json.loads(line)["id"] for line in out.read_text().splitlines()}

    engine = trail.engine()
    flt = AuditFilter.from_args({}, timezone="UTC")
    job = job_store.create_job(
        engine,
        requested_by_id="1",
        requested_by_email="admin@example.com",
        tenant_scoped=False,
        tenant_id=None,
        team=None,
        flt=flt,
        timezone="UTC",
        hold_seconds=60,
    )
    job_store.release_hold(engine, job, utcnow())
    assert job_store.claim(engine, job, utcnow()) is not None
    held = job_store.create_job(
        engine,
        requested_by_id="1",
        requested_by_email="admin@example.com",
        tenant_scoped=False,
        tenant_id=None,
        team=None,
        flt=flt,
        timezone="UTC",
        hold_seconds=60,
    )
    job_store.delete_held(engine, held)
    assert job_store.get_job(engine, held) is None

    # The chart keeps its closed days' totals, and counts a late event's day again.
    with app.app_context():
        audit_of(app).record("team.updated", occurred_at=utcnow() - dt.timedelta(days=3))
    scope = {"retention_days": 90, "tenant_scoped": False, "tenant_id": None}
    with engine.connect() as conn:
        days = dict(chart_counts(conn, AuditFilter(), cache=DayCountCache(), **scope))  # type: ignore[arg-type]
        assert conn.scalar(sa.select(sa.func.count()).select_from(day_total_table))
    assert days[(utcnow() - dt.timedelta(days=3)).date()] == 1
    with app.app_context():
        audit_of(app).record("team.updated", occurred_at=utcnow() - dt.timedelta(days=3))
    with engine.connect() as conn:
        days = dict(chart_counts(conn, AuditFilter(), cache=DayCountCache(), **scope))  # type: ignore[arg-type]
    assert days[(utcnow() - dt.timedelta(days=3)).date()] == 2
    with engine.connect() as conn:
        assert grants.privilege_problems(conn) == []


@servers
def test_check_finds_the_runtime_role_safe_and_the_owner_not(trail: Trail) -> None:
    def account_line(app: t.Any) -> str:
        output = app.test_cli_runner().invoke(args=["audit", "check"]).output
        [line] = [line for line in output.splitlines() if " account: " in line]
        return str(line)

    assert account_line(trail.runtime) == (
        "ok    account: the app's account cannot alter, delete or truncate the trail"
    )
    assert account_line(trail.owner).startswith("warn  account: ")


@servers
def test_the_runtime_role_signs_in_users(trail: Trail) -> None:
    user_id = add_user(trail.owner, "ann@example.com")
    client = trail.runtime.test_client()
    assert client.post("/login", data={"email": "ann@example.com", "password": "pw"}).status_code == 200
    with trail.engine().connect() as conn:
        login = conn.execute(sa.select(EVENTS).where(EVENTS.c.event_type == "user.login")).one()
    assert login.actor_id == str(user_id)


# -- what it may not do ----------------------------------------------------------------------

_REPLACE_PG = (
    "CREATE OR REPLACE FUNCTION audit_prune_events(after_id bigint, up_to_id bigint, older_than timestamp)"
    " RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$"
)
#: Each attack as (PostgreSQL, MariaDB). MariaDB has no DISABLE TRIGGER: dropping is its way.
ATTACKS: dict[str, tuple[str, str]] = {
    "disable event triggers": (
        "ALTER TABLE audit_event DISABLE TRIGGER USER",
        "DROP TRIGGER audit_event_no_delete",
    ),
    "disable seal triggers": (
        "ALTER TABLE audit_seal DISABLE TRIGGER USER",
        "DROP TRIGGER audit_seal_no_delete",
    ),
    "drop an event trigger": (
        "DROP TRIGGER audit_event_no_update ON audit_event",
        "DROP TRIGGER audit_event_no_update",
    ),
    "drop a seal trigger": (
        "DROP TRIGGER audit_seal_no_delete ON audit_seal",
        "DROP TRIGGER audit_seal_no_update",
    ),
    "add a trigger": (
        "CREATE TRIGGER fa_forge BEFORE INSERT ON audit_event FOR EACH ROW"
        " EXECUTE FUNCTION audit_event_refuse_update()",
        "CREATE TRIGGER fa_forge BEFORE INSERT ON audit_event FOR EACH ROW SET NEW.activity = 'forged'",
    ),
    "update an event": ("UPDATE audit_event SET activity = 'forged'",) * 2,
    "overwrite an event on conflict": (
        "INSERT INTO audit_event SELECT * FROM audit_event WHERE id = {young}"
        " ON CONFLICT (id) DO UPDATE SET activity = 'forged'",
        "INSERT INTO audit_event SELECT * FROM audit_event WHERE id = {young}"
        " ON DUPLICATE KEY UPDATE activity = 'forged'",
    ),
    "replace an event": (
        "MERGE INTO audit_event AS e USING (SELECT {young} AS id) AS s ON e.id = s.id"
        " WHEN MATCHED THEN DELETE",
        "REPLACE INTO audit_event SELECT * FROM audit_event WHERE id = {young}",
    ),
    "delete a young event": ("DELETE FROM audit_event WHERE id = {young}",) * 2,
    "delete an old event": ("DELETE FROM audit_event WHERE id = {old}",) * 2,
    "delete the seals": ("DELETE FROM audit_seal",) * 2,
    "update a seal": ("UPDATE audit_seal SET hmac = 'forged'",) * 2,
    "truncate the events": ("TRUNCATE TABLE audit_event",) * 2,
    "truncate the seals": ("TRUNCATE TABLE audit_seal",) * 2,
    "drop the events": ("DROP TABLE audit_event",) * 2,
    "drop the seals": ("DROP TABLE audit_seal",) * 2,
    "alter the events": ("ALTER TABLE audit_event ADD COLUMN forged INTEGER",) * 2,
    "rename the seals": ("ALTER TABLE audit_seal RENAME TO audit_seal_old",) * 2,
    "rewind the ids": (
        "SELECT setval(pg_get_serial_sequence('audit_event', 'id'), 1)",
        "ALTER TABLE audit_event AUTO_INCREMENT = 1",
    ),
    "delete the sign-in counts": ("DELETE FROM audit_login_fold",) * 2,
    "drop the prune routine": (
        "DROP FUNCTION audit_prune_events(bigint, bigint, timestamp)",
        "DROP PROCEDURE audit_prune_events",
    ),
    "replace the prune routine": (_REPLACE_PG, "CREATE OR REPLACE PROCEDURE audit_prune_events() BEGIN END"),
}


@servers
def test_every_attack_is_refused_to_the_runtime_role(trail: Trail, backend: str) -> None:
    """Each refused for want of a privilege (not by a trigger), and the trail still verifies."""
    [old] = record(trail.runtime, occurred_at=days_ago(100))
    [young] = record(trail.runtime)
    engine = trail.engine()
    sealing.seal(engine, KEY.encode())
    before = ids(trail)
    not_refused = {}
    for attack, spellings in ATTACKS.items():
        sql = spellings[1 if backend == "mariadb" else 0].format(old=old, young=young)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)
        except sa.exc.DBAPIError as err:
            if not denied(err):
                not_refused[attack] = f"failed, but not for want of a privilege: {err.orig}"
        else:
            not_refused[attack] = "went through"
    assert not_refused == {}
    assert ids(trail) == before
    report = verify(trail)
    assert (report.ok, report.events) == (True, len(before))


@servers
def test_the_owner_is_refused_as_the_runtime_role(trail: Trail) -> None:
    with trail.engine(trail.owner).connect() as conn:
        with pytest.raises(AuditError, match="must be another"):
            grants.runtime_grants(conn, trail.accounts.owner, 90)


@servers
def test_the_runtime_role_cannot_apply_grants(trail: Trail) -> None:
    """Only the owner may: on PostgreSQL it is told so before anything runs."""
    with pytest.raises(AuditError) as info:
        grants.apply(trail.engine(), f"fa_other_{trail.accounts.runtime[-8:]}", 90)
    if trail.accounts.backend == "postgresql":
        assert "which does not own audit_event" in str(info.value)
    else:
        assert "The server refused" in str(info.value)


# -- prune through the owner's routine -------------------------------------------------------


@servers
def test_the_runtime_role_prunes_a_sealed_trail_outside_the_window(trail: Trail) -> None:
    age_the_trail(trail)  # the table's own audit.enabled row
    old = record(trail.runtime, 3, occurred_at=days_ago(100))
    inside = record(trail.runtime, 2, occurred_at=days_ago(80))  # backdated, but inside the window
    young = record(trail.runtime, 2)
    assert not grants.may_delete_events(trail.engine())
    dry = cli(trail.runtime, "prune", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("Dry run: 4 event(s) older than")
    pruned = cli(trail.runtime, "prune")
    assert pruned.exit_code == 0, pruned.output
    assert pruned.output.startswith("Pruned 4 event(s) older than")
    remaining = ids(trail)
    assert not set(old) & set(remaining)
    assert set(inside + young) <= set(remaining)
    with trail.engine().connect() as conn:
        kinds = list(conn.scalars(sa.select(SEALS.c.kind).order_by(SEALS.c.id)))
    assert kinds[-1] == "prune"
    report = verify(trail)
    assert report.ok, report.problem


@servers
@pytest.mark.audit_config(AUDIT_SEAL_KEY=None)
def test_the_runtime_role_prunes_an_unsealed_trail_outside_the_window(trail: Trail) -> None:
    old = record(trail.runtime, 2, occurred_at=days_ago(100))
    inside = record(trail.runtime, occurred_at=days_ago(89))
    behind = record(trail.runtime, occurred_at=days_ago(95))  # old, behind a younger event
    newest = record(trail.runtime)
    with trail.runtime.app_context():
        state = audit_of(trail.runtime)._state(trail.runtime)
        result = retention.prune(state.engine, state.config)
    assert (result.count, result.sealed) == (3, False)
    assert ids(trail) == [1, *inside, *newest]
    assert not set(old + behind) & set(ids(trail))


@servers
def test_a_prune_the_runtime_role_archives(trail: Trail, tmp_path: t.Any) -> None:
    age_the_trail(trail)
    old = record(trail.runtime, 2, occurred_at=days_ago(100))
    record(trail.runtime)
    archive = tmp_path / "pruned.jsonl.gz"
    pruned = cli(trail.runtime, "prune", "--archive", str(archive), "--batch-size", "1")
    assert pruned.exit_code == 0, pruned.output
    with gzip.open(archive, "rt") as lines:
        assert [json.loads(line)["id"] for line in lines] == [1, *old]
    assert verify(trail).ok


@servers
def test_the_prune_routine_keeps_the_window_whatever_it_is_asked(trail: Trail) -> None:
    """Even with a prune link over every id (the runtime holds the key), a call that asks for
    a shorter window, or none, deletes nothing inside the window fixed at grant time."""
    age_the_trail(trail)
    record(trail.runtime, 2, occurred_at=days_ago(100))
    inside = record(trail.runtime, 2, occurred_at=days_ago(89.9))
    young = record(trail.runtime, 2)
    engine = trail.engine()
    sealing.seal(engine, KEY.encode())
    sealing.append_prune(engine, KEY.encode(), first_id=1, last_id=young[-1], count=0, cutoff=utcnow())
    with engine.begin() as conn:
        removed = grants.prune_batch(conn, None, young[-1], utcnow() + dt.timedelta(days=1))
    assert removed == 3  # the aged first row and the two old ones
    assert ids(trail) == inside + young


@servers
def test_the_prune_routine_deletes_nothing_beyond_the_prune_links(trail: Trail) -> None:
    age_the_trail(trail)
    old = record(trail.runtime, 3, occurred_at=days_ago(100))
    engine = trail.engine()
    sealing.seal(engine, KEY.encode())
    with engine.begin() as conn:
        assert grants.prune_batch(conn, None, old[-1], utcnow()) == 0  # sealed, but no prune link
    sealing.append_prune(engine, KEY.encode(), first_id=1, last_id=old[0], count=2, cutoff=utcnow())
    with engine.begin() as conn:
        assert grants.prune_batch(conn, None, old[-1], utcnow()) == 2
    assert ids(trail) == old[1:]
    sealing.append_prune(engine, KEY.encode(), first_id=1, last_id=old[-1], count=1, cutoff=utcnow())
    with engine.begin() as conn:
        assert grants.prune_batch(conn, None, old[-1], utcnow()) == 1
    assert ids(trail) == old[-1:]  # the newest event always stays, announced or not


@servers
def test_prune_without_the_routine_fails_before_it_writes(trail: Trail) -> None:
    age_the_trail(trail)
    record(trail.runtime, 2, occurred_at=days_ago(100))
    record(trail.runtime)
    routine = "FUNCTION audit_prune_events(bigint, bigint, timestamp)"
    with trail.engine(trail.owner).begin() as conn:
        is_pg = conn.dialect.name == "postgresql"
        conn.exec_driver_sql(f"DROP {routine if is_pg else 'PROCEDURE audit_prune_events'}")
    before = ids(trail)
    pruned = cli(trail.runtime, "prune")
    assert pruned.exit_code == 1
    assert "may not delete from audit_event and could not call audit_prune_events()" in pruned.output
    assert "'flask audit grants ROLE --apply'" in pruned.output
    assert ids(trail) == before
    with trail.engine().connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(SEALS)) == 0


@servers
def test_the_owner_still_prunes_directly(trail: Trail) -> None:
    age_the_trail(trail)
    old = record(trail.owner, 2, occurred_at=days_ago(100))
    behind_young = record(trail.owner)
    late_old = record(trail.owner, occurred_at=days_ago(100))
    record(trail.owner)
    assert grants.may_delete_events(trail.engine(trail.owner))
    pruned = cli(trail.owner, "prune")
    assert pruned.exit_code == 0, pruned.output
    assert not set([1, *old, *late_old]) & set(ids(trail))  # the owner removes those behind too
    assert behind_young[0] in ids(trail)


# -- the command ------------------------------------------------------------------------------


@servers
def test_grants_prints_the_statements(trail: Trail) -> None:
    runtime = trail.accounts.runtime
    result = trail.owner.test_cli_runner().invoke(grants_command, [runtime])
    assert result.exit_code == 0, result.output
    text = result.output
    if trail.accounts.backend == "postgresql":
        assert f'GRANT SELECT, INSERT ON TABLE "public"."audit_event" TO "{runtime}";' in text
        assert f'GRANT SELECT, INSERT ON TABLE "public"."audit_seal" TO "{runtime}";' in text
        assert f'GRANT USAGE ON SEQUENCE "public"."audit_event_id_seq" TO "{runtime}";' in text
        assert "SECURITY DEFINER SET search_path = pg_catalog, pg_temp" in text
        assert "make_interval(days => 90)" in text
        assert "REVOKE ALL ON FUNCTION" in text
    else:
        database = trail.accounts.database_url.database
        assert f"GRANT SELECT, INSERT ON `{database}`.`audit_event` TO '{runtime}'@'%';" in text
        assert f"GRANT SELECT, INSERT, UPDATE ON `{database}`.`audit_login_fold` TO '{runtime}'@'%';" in text
        assert "DELIMITER //" in text
        assert "SQL SECURITY DEFINER" in text
        assert "INTERVAL 90 DAY" in text
    assert "DROP" not in text.replace("DROP PROCEDURE IF EXISTS", "")


@servers
def test_grants_apply_runs_them_again_harmlessly(trail: Trail) -> None:
    result = trail.owner.test_cli_runner().invoke(grants_command, [trail.accounts.runtime, "--apply"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Applied ")
    assert "prunes through audit_prune_events() outside the last 90 days." in result.output
    if trail.accounts.backend == "mariadb":  # the owner may not read another account's grants
        assert "Could not check what else" in result.output
    record(trail.runtime)


@servers
def test_grants_apply_creates_a_role_that_cannot_sign_in_yet(trail: Trail) -> None:
    """An admin who may create roles gets one without a password (a locked account on MariaDB)."""
    name = f"fa_new_{trail.accounts.runtime[-8:]}"
    admin = create_app(SQLALCHEMY_DATABASE_URI=trail.accounts.database_url.render_as_string(False))
    try:
        result = admin.test_cli_runner().invoke(grants_command, [name, "--apply"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("Applied ")
        with trail.engine(admin).connect() as conn:
            if trail.accounts.backend == "postgresql":  # the test server trusts every local role
                query = "SELECT rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname = %(r)s"
                assert conn.exec_driver_sql(query, {"r": name}).one() == (True, True)
            else:
                assert "ACCOUNT LOCK" in str(conn.exec_driver_sql(f"SHOW CREATE USER '{name}'@'%%'").scalar())
    finally:
        _close(admin)
        if trail.accounts.backend == "postgresql":
            as_admin(trail.accounts, f"DROP OWNED BY {name}", f"DROP ROLE {name}")
        else:
            as_admin(trail.accounts, f"DROP USER '{name}'@'%'")


@servers
def test_grants_apply_names_what_still_lets_the_role_rewrite(trail: Trail) -> None:
    accounts = trail.accounts
    if accounts.backend == "postgresql":
        as_admin(accounts, "GRANT TRUNCATE ON audit_seal TO PUBLIC")
        result = trail.owner.test_cli_runner().invoke(grants_command, [accounts.runtime, "--apply"])
        assert result.exit_code == 1
        assert f"'{accounts.runtime}' may TRUNCATE audit_seal (granted to it, to PUBLIC" in result.output
        as_admin(accounts, "REVOKE TRUNCATE ON audit_seal FROM PUBLIC")
    else:
        as_admin(
            accounts, f"GRANT UPDATE ON `{accounts.database_url.database}`.* TO '{accounts.runtime}'@'%'"
        )
        with trail.engine().connect() as conn:
            [problem] = grants.privilege_problems(conn)
        assert problem.startswith(
            f"the connected account holds UPDATE on `{accounts.database_url.database}`.*"
        )
        as_admin(
            accounts, f"REVOKE UPDATE ON `{accounts.database_url.database}`.* FROM '{accounts.runtime}'@'%'"
        )


@pytest.mark.backends("sqlite")
def test_grants_on_sqlite_say_file_permissions_are_the_control(make_app: MakeApp) -> None:
    app = make_app()
    result = app.test_cli_runner().invoke(grants_command, ["app_runtime"])
    assert result.exit_code == 1
    assert "Database accounts and grants do not exist on sqlite" in result.output
    assert "its file permissions are the only access control" in result.output


# -- pieces ----------------------------------------------------------------------------------


def test_every_audit_table_has_its_runtime_privileges() -> None:
    assert grants.audit_tables() == sorted(grants.RUNTIME_PRIVILEGES)


@pytest.mark.parametrize(
    ("dialect", "role", "spelled"),
    [
        ("postgresql", "app_runtime", '"app_runtime"'),
        ("mariadb", "app_runtime", "'app_runtime'@'%'"),
        ("mysql", "app_runtime@10.0.0.%", "'app_runtime'@'10.0.0.%'"),
        ("mariadb", "app@localhost", "'app'@'localhost'"),
    ],
)
def test_role_spellings(dialect: str, role: str, spelled: str) -> None:
    assert grants.account(dialect, role) == spelled


@pytest.mark.parametrize(
    ("dialect", "role"),
    [("postgresql", "app-runtime"), ("postgresql", 'a"b'), ("postgresql", "app@host"), ("mariadb", "a'b")],
)
def test_role_names_that_are_not_plain_are_refused(dialect: str, role: str) -> None:
    with pytest.raises(AuditError, match="is not a"):
        grants.account(dialect, role)


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [("app", "app", True), ("ap_", "app", True), ("app\\_%", "app_x", True), ("app\\_%", "appx", False)],
)
def test_database_grant_patterns(pattern: str, name: str, matches: bool) -> None:
    assert grants._pattern_matches(pattern, name) is matches
