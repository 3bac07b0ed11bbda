"""Least privilege: a runtime account that records the trail and cannot rewrite it.

Whoever owns ``audit_event`` and ``audit_seal`` can disable or drop their triggers, then
update, delete or truncate at will. So the tables belong to one account, the *owner*, which
runs ``db.create_all()`` or the migrations and these statements; the app connects as
another, the *runtime role*, which may:

- read and insert events and seals (record, read, seal, verify, export, replay);
- read, insert, update and delete export jobs, and read, insert and update the failed
  sign-in counters (``audit_login_fold``) and the stream cursors (``audit_stream``), and
  read, insert and delete the admin chart's day totals (``audit_day_total``);
- delete old events only through :data:`PRUNE_ROUTINE`, which runs with the owner's rights
  and deletes only rows older than the retention window fixed in it when the grants were
  made, never the newest event, and, once the trail is sealed, only ids a ``prune`` link
  covers (so a removal is always announced in the chain first).

It cannot update, delete or truncate events or seals, nor alter, disable or drop a trigger
or a table: PostgreSQL keeps those for the owner; MariaDB and MySQL keep them for the
``UPDATE``, ``DELETE``, ``DROP``, ``ALTER`` and ``TRIGGER`` privileges, which it is not given.

On MariaDB and MySQL the role is an account: ``app_runtime`` means ``'app_runtime'@'%'``;
``app_runtime@10.0.0.%`` names the host part. Prune uses a ``SQL SECURITY DEFINER``
procedure there too, rather than a maintenance account, so that one ``flask audit prune``
works the same on every server and no third password needs keeping.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing as t

import sqlalchemy as sa

from ..exceptions import AuditError
from ..store.models import AuditBase
from ..store.models import DAY_TOTAL_TABLE_NAME
from ..store.models import EXPORT_JOB_TABLE_NAME
from ..store.models import LOGIN_FOLD_TABLE_NAME
from ..store.models import SEAL_TABLE_NAME
from ..store.models import STREAM_TABLE_NAME
from ..store.models import TABLE_NAME

#: The routine the runtime role prunes through (a function on PostgreSQL, a procedure on
#: MariaDB and MySQL): ``audit_prune_events(after_id, up_to_id, older_than)``.
PRUNE_ROUTINE = "audit_prune_events"

#: What the runtime needs on each audit table, and nothing more.
RUNTIME_PRIVILEGES: dict[str, tuple[str, ...]] = {
    TABLE_NAME: ("SELECT", "INSERT"),
    SEAL_TABLE_NAME: ("SELECT", "INSERT"),
    EXPORT_JOB_TABLE_NAME: ("SELECT", "INSERT", "UPDATE", "DELETE"),
    LOGIN_FOLD_TABLE_NAME: ("SELECT", "INSERT", "UPDATE"),
    STREAM_TABLE_NAME: ("SELECT", "INSERT", "UPDATE"),
    DAY_TOTAL_TABLE_NAME: ("SELECT", "INSERT", "DELETE"),
}

#: Privileges that would let the runtime role rewrite a table (unless it needs them there).
_PG_FORBIDDEN = ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER")
_MYSQL_FORBIDDEN = ("ALL PRIVILEGES", "UPDATE", "DELETE", "DROP", "ALTER", "TRIGGER")

_MYSQL_DENIED = 1227  # "Access denied; you need (at least one of) the ... privilege(s)"
_PG_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MYSQL_ACCOUNT = re.compile(r"(?P<user>[A-Za-z0-9_$.-]{1,80})(?:@(?P<host>[A-Za-z0-9_.%:-]{1,255}))?")


def _family(dialect_name: str) -> str:
    return "mysql" if dialect_name in ("mysql", "mariadb") else dialect_name


def _require_accounts(dialect_name: str) -> None:
    if _family(dialect_name) not in ("postgresql", "mysql"):
        raise AuditError(
            f"Database accounts and grants do not exist on {dialect_name}: whoever can write the"
            " database file can rewrite the trail, so its file permissions are the only access"
            " control. Keep the file (and its -wal and -shm files) writable by the app's user"
            " alone, and set AUDIT_SEAL_KEY so that verify detects a change."
        )


def _qi(name: str) -> str:
    """A PostgreSQL identifier, quoted (names are checked before they get here)."""
    return '"' + name.replace('"', '""') + '"'


def _bq(name: str) -> str:
    """A MariaDB/MySQL identifier, quoted."""
    return "`" + name.replace("`", "``") + "`"


def account(dialect_name: str, role: str) -> str:
    """``role`` as the grant statements spell it: ``"app"``, or ``'app'@'%'``.

    :raises AuditError: not a plain role name (or ``user[@host]`` on MariaDB and MySQL).
    """
    _require_accounts(dialect_name)
    if _family(dialect_name) == "postgresql":
        if not _PG_ROLE.fullmatch(role):
            raise AuditError(
                f"{role!r} is not a role name flask audit grants accepts: letters, digits and"
                " underscores, starting with a letter or underscore, at most 63 characters."
            )
        return _qi(role)
    found = _MYSQL_ACCOUNT.fullmatch(role)
    if found is None:
        raise AuditError(
            f"{role!r} is not an account flask audit grants accepts: 'user' (any host, '%') or"
            " 'user@host', with letters, digits, '_', '.', '-' ('%' and ':' in the host)."
        )
    return f"'{found['user']}'@'{found['host'] or '%'}'"


# -- the statements ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Statement:
    """One statement; ``compound`` when its body holds ``;`` (a MariaDB client needs DELIMITER)."""

    sql: str
    compound: bool = False
    note: str | None = None  #: a comment printed above it
    #: skipped by :func:`apply` when the server denies the privilege it needs (an account that
    #: may not create users, where the user exists already)
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class Grants:
    """The statements that set up one runtime role on one database, and what they are for."""

    dialect: str
    role: str  #: as given
    account: str  #: as the statements spell it
    database: str
    owner: str  #: the connected account, which must own the tables to apply them
    retention_days: int
    statements: tuple[Statement, ...]

    def script(self) -> str:
        """The statements as a script for ``psql`` or the ``mariadb`` client."""
        family = _family(self.dialect)
        lines = [
            f"-- flask-audit: the runtime role {self.account} on {self.dialect} database {self.database}.",
            f"-- Run as the owner of the audit tables ({self.owner}); then connect the app as {self.role}.",
            f"-- It prunes through {PRUNE_ROUTINE}(), which keeps the last {self.retention_days} days.",
        ]
        for statement in self.statements:
            lines.append("")
            if statement.note:
                lines.append(f"-- {statement.note}")
            if statement.compound and family == "mysql":
                lines += ["DELIMITER //", statement.sql + " //", "DELIMITER ;"]
            else:
                lines.append(statement.sql + ";")
        return "\n".join(lines) + "\n"


def _days(retention_days: int) -> int:
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
        raise ValueError(f"retention_days must be a positive integer, not {retention_days!r}.")
    return retention_days


def _privileges(table: str) -> str:
    return ", ".join(RUNTIME_PRIVILEGES[table])


def _pg_prune_function(schema: str, days: int) -> str:
    events, seals = f"{_qi(schema)}.{_qi(TABLE_NAME)}", f"{_qi(schema)}.{_qi(SEAL_TABLE_NAME)}"
    # A fixed search_path and qualified names: the caller cannot slip in objects of its own.
    return f"""CREATE OR REPLACE FUNCTION {_qi(schema)}.{PRUNE_ROUTINE}(
    after_id bigint, up_to_id bigint, older_than timestamp) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bound bigint := LEAST(up_to_id, (SELECT max(id) - 1 FROM {events}));
    edge timestamp := LEAST(older_than, (now() AT TIME ZONE 'UTC') - make_interval(days => {days}));
    removed bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM {seals}) THEN
        bound := LEAST(bound, COALESCE((SELECT max(last_id) FROM {seals} WHERE kind = 'prune'), 0));
    END IF;
    DELETE FROM {events}
    WHERE id <= bound AND occurred_at < edge AND (after_id IS NULL OR id > after_id);
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END $$"""


def _pg_role(conn: sa.Connection, role: str) -> tuple[bool, bool] | None:
    """Whether ``role`` exists: ``(superuser, may log in)``, or ``None``."""
    row = conn.execute(
        sa.text("SELECT rolsuper, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = :r"), {"r": role}
    ).one_or_none()
    return None if row is None else (bool(row[0]), bool(row[1]))


def _missing(tables: t.Iterable[str]) -> AuditError:
    return AuditError(
        f"The table(s) {', '.join(tables)} do not exist here: create the audit tables first, as the"
        " owner (db.create_all() or 'flask db upgrade'), then make the grants."
    )


def _pg_grants(conn: sa.Connection, role: str, days: int) -> Grants:
    who = account(conn.dialect.name, role)
    owner, database = conn.execute(sa.text("SELECT current_user, current_database()")).one()
    found = {
        name: conn.execute(
            sa.text(
                "SELECT n.nspname, pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c"
                " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(:t)"
            ),
            {"t": name},
        ).one_or_none()
        for name in RUNTIME_PRIVILEGES
    }
    missing = [name for name, row in found.items() if row is None]
    if missing:
        raise _missing(missing)
    schema = t.cast(tuple[str, str], found[TABLE_NAME])[0]
    table_owners = {t.cast(tuple[str, str], row)[1] for row in found.values()}
    if role == owner or role in table_owners:
        raise AuditError(
            f"{role!r} owns the audit tables (or is the account connected now): the runtime role must"
            " be another role, without the owner's rights."
        )
    statements = [
        Statement(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}')"
            f" THEN CREATE ROLE {who} LOGIN; END IF; END $$",
            note="Made without a password if it is new: set one (ALTER ROLE ... PASSWORD) before use.",
        )
    ]
    public_usage = conn.scalar(sa.text("SELECT has_schema_privilege('public', :s, 'USAGE')"), {"s": schema})
    if not public_usage:
        statements.append(Statement(f"GRANT USAGE ON SCHEMA {_qi(schema)} TO {who}"))
    for name in RUNTIME_PRIVILEGES:
        table = f"{_qi(schema)}.{_qi(name)}"
        statements += [
            Statement(f"REVOKE ALL ON TABLE {table} FROM {who}"),
            Statement(f"GRANT {_privileges(name)} ON TABLE {table} TO {who}"),
        ]
    sequences = conn.execute(
        sa.text(_PG_SEQUENCES).bindparams(sa.bindparam("tables", expanding=True)),
        {"tables": [_regclass(conn, name) for name in RUNTIME_PRIVILEGES]},
    ).all()
    for seq_schema, seq in sequences:  # nextval() for ids and any other column default
        sequence = f"{_qi(seq_schema)}.{_qi(seq)}"
        statements += [
            Statement(f"REVOKE ALL ON SEQUENCE {sequence} FROM {who}"),
            Statement(f"GRANT USAGE ON SEQUENCE {sequence} TO {who}"),
        ]
    function = f"{_qi(schema)}.{PRUNE_ROUTINE}(bigint, bigint, timestamp)"
    statements += [
        Statement(
            _pg_prune_function(schema, days),
            compound=True,
            note=f"Prune runs with the owner's rights and deletes only what is older than {days} days.",
        ),
        Statement(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC"),
        Statement(f"GRANT EXECUTE ON FUNCTION {function} TO {who}"),
    ]
    return Grants(conn.dialect.name, role, who, database, owner, days, tuple(statements))


#: The sequences the tables own (serial and identity columns) or that their column defaults
#: call, whatever their names: each INSERT of the runtime role draws from them.
_PG_SEQUENCES = (
    "SELECT DISTINCT n.nspname, s.relname FROM pg_catalog.pg_depend d"
    " JOIN pg_catalog.pg_class s ON s.relkind = 'S' AND ("
    "  (d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')"
    "   AND d.refobjid IN :tables)"
    "  OR (d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.refobjid = s.oid AND d.objid IN"
    "   (SELECT oid FROM pg_catalog.pg_attrdef WHERE adrelid IN :tables)))"
    " JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace ORDER BY s.relname"
)


def _regclass(conn: sa.Connection, table: str) -> int:
    return int(conn.scalar(sa.text("SELECT CAST(to_regclass(:t) AS oid)"), {"t": table}))


def _mysql_prune_procedure(database: str, days: int) -> str:
    events, seals = f"{_bq(database)}.{_bq(TABLE_NAME)}", f"{_bq(database)}.{_bq(SEAL_TABLE_NAME)}"
    return f"""CREATE DEFINER = CURRENT_USER PROCEDURE {_bq(database)}.{_bq(PRUNE_ROUTINE)}(
    IN after_id BIGINT, IN up_to_id BIGINT, IN older_than DATETIME(6))
SQL SECURITY DEFINER MODIFIES SQL DATA
BEGIN
    DECLARE bound BIGINT DEFAULT up_to_id;
    DECLARE edge DATETIME(6) DEFAULT UTC_TIMESTAMP(6) - INTERVAL {days} DAY;
    DECLARE top BIGINT;
    DECLARE announced BIGINT;
    IF older_than IS NOT NULL AND older_than < edge THEN SET edge = older_than; END IF;
    SELECT MAX(id) - 1 INTO top FROM {events};
    IF bound IS NULL OR top < bound THEN SET bound = top; END IF;
    IF EXISTS (SELECT 1 FROM {seals}) THEN
        SELECT COALESCE(MAX(last_id), 0) INTO announced FROM {seals} WHERE kind = 'prune';
        IF announced < bound THEN SET bound = announced; END IF;
    END IF;
    DELETE FROM {events}
    WHERE id <= bound AND occurred_at < edge AND (after_id IS NULL OR id > after_id);
    SELECT ROW_COUNT() AS removed;
END"""


def _mysql_grants(conn: sa.Connection, role: str, days: int) -> Grants:
    who = account(conn.dialect.name, role)
    database, owner = conn.execute(sa.text("SELECT DATABASE(), CURRENT_USER()")).one()
    if database is None:
        raise AuditError("The app's database URL names no database: add one (mysql://.../DATABASE).")
    present = set(
        conn.scalars(
            sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
        )
    )
    missing = [name for name in RUNTIME_PRIVILEGES if name not in present]
    if missing:
        raise _missing(missing)
    user, _, host = owner.partition("@")
    if who == f"'{user}'@'{host}'":
        raise AuditError(
            f"{role!r} is the account connected now, which owns the audit tables: the runtime role"
            " must be another account, without the owner's privileges."
        )
    statements = [
        Statement(
            f"CREATE USER IF NOT EXISTS {who} ACCOUNT LOCK",
            note="Needs CREATE USER; a new account stays locked until it has a password"
            " (ALTER USER ... IDENTIFIED BY ... ACCOUNT UNLOCK).",
            optional=True,
        )
    ]
    for name in RUNTIME_PRIVILEGES:
        table = f"{_bq(database)}.{_bq(name)}"
        # Granting first makes the revoke valid even where nothing was granted yet.
        statements += [
            Statement(f"GRANT SELECT ON {table} TO {who}"),
            Statement(f"REVOKE ALL PRIVILEGES ON {table} FROM {who}"),
            Statement(f"GRANT {_privileges(name)} ON {table} TO {who}"),
        ]
    statements += [
        Statement(f"DROP PROCEDURE IF EXISTS {_bq(database)}.{_bq(PRUNE_ROUTINE)}"),
        Statement(
            _mysql_prune_procedure(database, days),
            compound=True,
            note=f"Prune runs with the owner's rights and deletes only what is older than {days} days.",
        ),
        Statement(f"GRANT EXECUTE ON PROCEDURE {_bq(database)}.{_bq(PRUNE_ROUTINE)} TO {who}"),
    ]
    return Grants(conn.dialect.name, role, who, database, owner, days, tuple(statements))


def runtime_grants(conn: sa.Connection, role: str, retention_days: int) -> Grants:
    """The statements that give ``role`` what the runtime needs on ``conn``'s audit tables.

    Read from the database as it stands: the tables must exist (their schema and id
    sequences are named in the statements).

    :param retention_days: the window the prune routine keeps, fixed in it.
    :raises AuditError: SQLite, a role name that is not plain, missing tables, or ``role``
        being the owner itself.
    """
    days = _days(retention_days)
    _require_accounts(conn.dialect.name)
    if _family(conn.dialect.name) == "postgresql":
        return _pg_grants(conn, role, days)
    return _mysql_grants(conn, role, days)


def _execute(conn: sa.Connection, sql: str) -> sa.CursorResult[t.Any]:
    """Run ``sql`` as written: with a format paramstyle, a ``%`` would read as a placeholder."""
    if conn.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("%", "%%")
    return conn.exec_driver_sql(sql)


def _check_owner(conn: sa.Connection) -> None:
    """PostgreSQL: the connected account must own the tables, or GRANT only warns."""
    for name in RUNTIME_PRIVILEGES:
        owner, ours = conn.execute(
            sa.text(
                "SELECT pg_catalog.pg_get_userbyid(relowner), pg_has_role(current_user, relowner, 'USAGE')"
                " FROM pg_catalog.pg_class WHERE oid = to_regclass(:t)"
            ),
            {"t": name},
        ).one()
        if not ours:
            raise AuditError(
                f"Connected as {conn.scalar(sa.text('SELECT current_user'))!r}, which does not own {name}"
                f" ({owner!r} does): apply the grants as the owner of the audit tables."
            )


def apply(engine: sa.Engine, role: str, retention_days: int) -> Grants:
    """Make and run the grants of ``role`` as ``engine``'s account, which must own the tables.

    On PostgreSQL in one transaction; MariaDB and MySQL commit each statement on its own.

    :raises AuditError: see :func:`runtime_grants`; not the owner (PostgreSQL); a statement
        the server refused, quoted.
    """
    skipped = ""
    with engine.begin() as conn:
        grants = runtime_grants(conn, role, retention_days)
        if _family(conn.dialect.name) == "postgresql":
            _check_owner(conn)
        for statement in grants.statements:
            try:
                _execute(conn, statement.sql)
            except sa.exc.DBAPIError as err:
                first = statement.sql.splitlines()[0]
                if statement.optional and _mysql_code(err) == _MYSQL_DENIED:
                    skipped = f" ({first!r} was skipped: {reason(err)})"
                    continue
                raise AuditError(f"The server refused {first!r}: {reason(err)}{skipped}") from err
    return grants


# -- checking what a role may do ----------------------------------------------------------


def privilege_problems(conn: sa.Connection, role: str | None = None) -> list[str]:
    """What lets ``role`` (the connected account by default) rewrite the trail: one sentence
    each, with the fix; empty when it cannot.

    :raises AuditError: SQLite; on MariaDB and MySQL, another account's grants could not be
        read (``SHOW GRANTS FOR`` needs ``SELECT`` on the ``mysql`` database).
    """
    _require_accounts(conn.dialect.name)
    if _family(conn.dialect.name) == "postgresql":
        return _pg_problems(conn, role)
    return _mysql_problems(conn, role)


def _pg_problems(conn: sa.Connection, role: str | None) -> list[str]:
    role = role or t.cast(str, conn.scalar(sa.text("SELECT current_user")))
    found = _pg_role(conn, role)
    if found is None:
        return [f"The role {role!r} does not exist."]
    if found[0]:
        return [f"{role!r} is a superuser, above every privilege: the runtime role must not be one."]
    problems = []
    for name, allowed in RUNTIME_PRIVILEGES.items():
        row = conn.execute(
            sa.text(
                "SELECT pg_catalog.pg_get_userbyid(relowner), pg_has_role(:r, relowner, 'USAGE')"
                " FROM pg_catalog.pg_class WHERE oid = to_regclass(:t)"
            ),
            {"r": role, "t": name},
        ).one_or_none()
        if row is None:
            continue
        if row[1]:
            problems.append(
                f"{role!r} has the rights of {row[0]!r}, the owner of {name}: it may drop its triggers."
                " Use a role that is not the owner nor a member of it."
            )
            continue
        for privilege in _PG_FORBIDDEN:
            has = sa.text("SELECT has_table_privilege(:r, to_regclass(:t), :p)")
            if privilege not in allowed and conn.scalar(has, {"r": role, "t": name, "p": privilege}):
                problems.append(
                    f"{role!r} may {privilege} {name} (granted to it, to PUBLIC or to a role it belongs"
                    f" to): REVOKE {privilege} ON {name} FROM that grantee."
                )
    return problems


_GRANT_LINE = re.compile(
    r"GRANT (?P<privileges>.+?) ON (?:(?:PROCEDURE|FUNCTION|PACKAGE BODY|PACKAGE) )?(?P<scope>\S+) TO "
)
_ROLE_LINE = re.compile(r"GRANT (?P<roles>`.+?`(?:,\s*`.+?`)*) TO ")


def _unquote(part: str) -> str:
    return part[1:-1].replace("``", "`") if part.startswith("`") else part


def _pattern_matches(pattern: str, name: str) -> bool:
    """A database-level grant's name, where ``_`` and ``%`` are wildcards unless escaped."""
    regex = "".join(
        "." if piece == "_" else ".*" if piece == "%" else re.escape(piece[-1])
        for piece in re.findall(r"\\.|.", pattern)
    )
    return re.fullmatch(regex, name) is not None


def _privilege_names(text: str) -> set[str]:
    return {part.split(" (")[0].strip().upper() for part in re.split(r",\s*(?![^()]*\))", text)}


def _mysql_problems(conn: sa.Connection, role: str | None) -> list[str]:
    who = account(conn.dialect.name, role) if role else "CURRENT_USER"
    database = t.cast(str, conn.scalar(sa.text("SELECT DATABASE()")))
    try:
        lines = list(_execute(conn, f"SHOW GRANTS FOR {who}").scalars())
    except sa.exc.DBAPIError as err:
        raise AuditError(f"Could not read the grants of {who}: {reason(err)}") from err
    name = role or "the connected account"
    problems = []
    for line in lines:
        grant = _GRANT_LINE.match(line)
        if grant is None:
            roles = _ROLE_LINE.match(line)
            if roles is not None:
                problems.append(
                    f"{name} holds the role(s) {roles['roles']}, whose privileges are not checked here:"
                    " make sure none allows UPDATE, DELETE, DROP, ALTER or TRIGGER on the audit tables."
                )
            continue
        scope_db, _, scope_table = grant["scope"].partition(".")
        scope_db, scope_table = _unquote(scope_db), _unquote(scope_table)
        if scope_db != "*" and not _pattern_matches(scope_db, database):
            continue
        if scope_table not in ("*", *RUNTIME_PRIVILEGES):
            continue
        allowed = RUNTIME_PRIVILEGES.get(scope_table, ())
        bad = sorted(
            p for p in _privilege_names(grant["privileges"]) & set(_MYSQL_FORBIDDEN) if p not in allowed
        )
        if bad:
            where = "every database" if scope_db == "*" else f"{grant['scope']}"
            problems.append(
                f"{name} holds {', '.join(bad)} on {where}, which reaches the audit tables: revoke it"
                " (grant the app's own tables one by one, or keep the trail in a database of its own"
                " with AUDIT_BIND)."
            )
    return problems


# -- pruning as the runtime role ----------------------------------------------------------


def may_delete_events(engine: sa.Engine) -> bool:
    """Whether the connected account may ``DELETE FROM audit_event`` itself (the owner may)."""
    family = _family(engine.dialect.name)
    if family == "postgresql":
        with engine.connect() as conn:
            return bool(
                conn.scalar(
                    sa.text("SELECT has_table_privilege(to_regclass(:t), 'DELETE')"), {"t": TABLE_NAME}
                )
            )
    if family != "mysql":
        return True
    with engine.connect() as conn:
        try:  # the privilege is checked before any row is looked at; none matches anyway
            conn.exec_driver_sql(f"DELETE FROM {TABLE_NAME} WHERE 1 = 0")
        except sa.exc.DBAPIError as err:
            if _mysql_code(err) in (1142, 1143):  # table or column access denied
                return False
            raise
        finally:
            conn.rollback()
    return True


def _mysql_code(err: sa.exc.DBAPIError) -> t.Any:
    args = getattr(err.orig, "args", None) or (None,)
    return args[0]


def reason(err: sa.exc.DBAPIError) -> str:
    """The server's message, in one line: PyMySQL's text without its number, psycopg's first line."""
    args: tuple[t.Any, ...] = getattr(err.orig, "args", None) or ()
    if len(args) == 2 and isinstance(args[0], int):
        return str(args[1])
    lines = str(err.orig).strip().splitlines()
    return lines[0] if lines else type(err.orig).__name__


def prune_batch(conn: sa.Connection, after_id: int | None, up_to_id: int, older_than: dt.datetime) -> int:
    """Delete, through :data:`PRUNE_ROUTINE`, the events with ids in ``(after_id, up_to_id]``
    older than ``older_than`` (and than the routine's own window); how many it deleted."""
    params = {
        "after": after_id,
        "up_to": up_to_id,
        "older": older_than.astimezone(dt.timezone.utc).replace(tzinfo=None),
    }
    if _family(conn.dialect.name) == "postgresql":
        call = (
            f"SELECT {PRUNE_ROUTINE}(CAST(:after AS BIGINT), CAST(:up_to AS BIGINT),"
            " CAST(:older AS TIMESTAMP))"
        )
    else:
        call = f"CALL {PRUNE_ROUTINE}(:after, :up_to, :older)"
    return int(conn.execute(sa.text(call), params).scalar() or 0)


def check_prune_routine(engine: sa.Engine, older_than: dt.datetime) -> None:
    """Call :data:`PRUNE_ROUTINE` on an empty range, so that prune fails before it writes.

    :raises AuditError: the routine is missing or the account may not call it.
    """
    try:
        with engine.begin() as conn:
            prune_batch(conn, 0, 0, older_than)
    except sa.exc.DBAPIError as err:
        raise AuditError(
            f"This account may not delete from {TABLE_NAME} and could not call {PRUNE_ROUTINE}()"
            f" ({reason(err)}): the owner of the audit tables runs 'flask audit grants ROLE --apply'"
            " to create it for the runtime role, or prune runs as the owner."
        ) from err


def audit_tables() -> list[str]:
    """flask_audit's tables, each of which :data:`RUNTIME_PRIVILEGES` must cover."""
    return sorted(AuditBase.metadata.tables)
