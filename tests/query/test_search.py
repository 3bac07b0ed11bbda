"""The search language: parsing, error positions, and what each term finds on every backend."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import typing as t

import pytest
import sqlalchemy as sa

from flask_audit import InvalidFilterError
from flask_audit.query import search_sql
from flask_audit.query import sql
from flask_audit.query.filters import AuditFilter
from flask_audit.query.resolve import code_point_order
from flask_audit.query.resolve import next_variant
from flask_audit.query.resolve import resolve
from flask_audit.query.search import parse
from flask_audit.query.search import quote
from flask_audit.query.search import Search
from flask_audit.query.search import SearchError
from flask_audit.query.search import Span
from flask_audit.query.search import Stored
from flask_audit.query.search import Target
from flask_audit.query.search import TypeMatch
from flask_audit.query.sql import conditions
from flask_audit.query.sql import fetch_page
from flask_audit.query.sql import Scope
from flask_audit.store.models import audit_event_table

from ..conftest import audit_of
from ..conftest import MakeApp
from ..views_fixtures import build_site
from ..views_fixtures import Site
from ..views_fixtures import utcnow

UTC = dt.timezone.utc
BERLIN = "Europe/Berlin"


def terms(text: str, timezone: str = "UTC") -> list[tuple[str, t.Any, bool]]:
    search = parse(text, timezone=timezone)
    assert search is not None
    return [(term.field, term.value, term.negated) for term in search.terms]


def refused(text: str) -> SearchError:
    with pytest.raises(SearchError) as info:
        parse(text, timezone=BERLIN)
    assert info.value.code == 400
    return info.value


# Parsing: no database.


def test_every_qualifier_is_read() -> None:
    query = (
        'actor:priya team:"Équipe Zoë" entity:sso type:team.* type:User.Login action:DELETE'
        " outcome:failure target:user target:team:Équipe ip:10.0.0.1/8 ip:2001:DB8::1"
        " created:2026-11-01 exported"
    )
    assert terms(query, BERLIN) == [
        ("actor", "priya", False),
        ("team", "Équipe Zoë", False),
        ("entity", "SSO", False),
        ("type", TypeMatch("team.", prefix=True), False),
        ("type", TypeMatch("user.login"), False),
        ("action", "delete", False),
        ("outcome", "failure", False),
        ("target", Target("user"), False),
        ("target", Target("team", "Équipe"), False),
        ("ip", ipaddress.ip_network("10.0.0.0/8"), False),
        ("ip", ipaddress.ip_address("2001:db8::1"), False),
        (
            "created",
            Span(dt.datetime(2026, 10, 31, 23, tzinfo=UTC), dt.datetime(2026, 11, 1, 23, tzinfo=UTC)),
            False,
        ),
        ("text", "exported", False),
    ]


def test_qualifier_names_ignore_case_and_values_keep_theirs() -> None:
    assert terms("ACTOR:Priya Team:Growth") == [("actor", "Priya", False), ("team", "Growth", False)]


def test_custom_event_types_and_target_types() -> None:
    assert terms("type:billing.Plan_changed target:User:42") == [
        ("type", TypeMatch("billing.Plan_changed"), False),
        ("target", Target("user", "42"), False),
    ]


def test_a_minus_excludes_and_quotes_keep_spaces_colons_and_minus() -> None:
    assert terms('-outcome:failure -"a b" "-x" "http://x" \'single\'') == [
        ("outcome", "failure", True),
        ("text", "a b", True),
        ("text", "-x", False),
        ("text", "http://x", False),
        ("text", "'single'", False),
    ]


def test_quotes_may_hold_escaped_quotes_and_backslashes() -> None:
    assert terms(r'team:"say \"hi\" \\o/"') == [("team", 'say "hi" \\o/', False)]
    assert terms('team:pre"fix with"space') == [("team", "prefix withspace", False)]
    for value in ("plain", "Équipe Zoë", 'a"b', "back\\slash x", "end\\", "-dash"):
        assert terms("team:" + quote(value)) == [("team", value, False)]
    assert quote("plain") == "plain" and quote("Équipe Zoë") == '"Équipe Zoë"'


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("created:2026-11-01", (2026, 10, 31, 23), (2026, 11, 1, 23)),
        ("created:>=2026-11-01", (2026, 10, 31, 23), None),
        ("created:>2026-11-01", (2026, 11, 1, 23), None),
        ("created:<2026-11-01", None, (2026, 10, 31, 23)),
        ("created:<=2026-11-01", None, (2026, 11, 1, 23)),
        ("created:2026-11-01..2026-11-30", (2026, 10, 31, 23), (2026, 11, 30, 23)),
        ("created:2026-11-01..*", (2026, 10, 31, 23), None),
        ("created:*..2026-11-30", None, (2026, 11, 30, 23)),
        ("created:>=2026-11-01T10:00:00Z", (2026, 11, 1, 10), None),
        ("created:2026-11-01T10:00..2026-11-01T12:00", (2026, 11, 1, 9), (2026, 11, 1, 11, 0, 0, 1)),
        ("created:<=9999-12-31", None, None),
    ],
)
def test_created_days_are_read_in_the_display_zone(
    text: str, low: tuple[int, ...] | None, high: tuple[int, ...] | None
) -> None:
    """Days run from midnight to midnight in Berlin (UTC+1 in November); times are exact."""
    [(_, span, _)] = terms(text, BERLIN)
    assert span == Span(_utc(low), _utc(high))


def _utc(parts: tuple[int, ...] | None) -> dt.datetime | None:
    if parts is None:
        return None
    year, month, day, hour, *more = parts
    micro = more[2] if len(more) == 3 else 0
    return dt.datetime(year, month, day, hour, microsecond=micro, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message", "column", "width"),
    [
        ("acter:priya", "Unknown qualifier 'acter:' at column 1 (try actor:).", 1, 6),
        ("team:x -actr:x", "Unknown qualifier 'actr:' at column 9 (try actor:).", 9, 5),
        ("event_type:user.login", "Unknown qualifier 'event_type:' at column 1 (try type:).", 1, 11),
        (
            "http://example.com",
            "Unknown qualifier 'http:' at column 1 (qualifiers: actor:, team:, entity:, type:, action:,"
            " outcome:, target:, ip:, created:; quote text with a colon).",
            1,
            5,
        ),
        (
            "type:team.* action:rename",
            "Unknown action 'rename' at column 20. Choose one of: create, update, delete, export, login,"
            " logout.",
            20,
            6,
        ),
        (
            "entity:Billing",
            "Unknown entity 'Billing' at column 8. Choose one of: Login, User, \"Two-factor authentication\","
            ' SSO, Team, Invitation, Role, "Audit log".',
            8,
            7,
        ),
        ("outcome:", "'outcome:' at column 1 needs a value, as in outcome:….", 1, 8),
        ('x team:"Équipe', 'The quote at column 8 is not closed: end the value with ".', 8, 7),
        (
            "a - b",
            "Nothing follows the '-' at column 3: write it right before a term, as in -outcome:failure.",
            3,
            1,
        ),
        ('a ""', "Empty quotes at column 3 find nothing: put a word between them.", 3, 2),
        (
            "type:*",
            "'type:*' at column 1 matches every event: give the start of a type, as in type:user.*.",
            1,
            6,
        ),
        ("type:drop table", "'drop' at column 6 is not an event type: they look like role.updated.", 6, 4),
        ("type:a+b.c", "'a+b.c' at column 6 is not an event type: they look like role.updated.", 6, 5),
        (
            "target::42",
            "':42' at column 8 is not a target: write a type or type:id, as in target:user:42.",
            8,
            3,
        ),
        (
            "ip:999.1.1.1",
            "'999.1.1.1' at column 4 is not an IP address or network (such as 203.0.113.7 or 10.0.0.0/8).",
            4,
            9,
        ),
        (
            "ip:fe80::1%eth0",
            "'fe80::1%eth0' at column 4 has a zone id, which stored addresses never have.",
            4,
            12,
        ),
        (
            "created:2026-02-30",
            "'2026-02-30' at column 9 is not a date: use YYYY-MM-DD or an ISO 8601 time, after >, >=, <, <="
            " or in a range such as 2026-11-01..2026-11-30.",
            9,
            10,
        ),
        (
            "created:2026-11-30..2026-11-01",
            "The range '2026-11-30..2026-11-01' at column 9 ends before it starts.",
            9,
            22,
        ),
        ("created:<0001-01-01", "'0001-01-01' at column 9 is out of range.", 9, 11),
        (
            "created:>=2026-11-01 team:x created:<2026-11-30",
            "'created:>=2026-11-01' or 'created:<2026-11-30' (at column 29) matches nearly every event:"
            " a repeated qualifier means either value. Write one range instead, such as"
            " created:2026-11-01..2026-11-30.",
            29,
            19,
        ),
        (
            "actor:" + "x" * 321,
            "The value of 'actor:' at column 1 is too long (at most 320 characters).",
            1,
            327,
        ),
        (
            "x " * 31,
            "The search has too many terms (at most 30): 'x' at column 61 is one more.",
            61,
            1,
        ),
        ("{at} acter:{x}", "Unknown qualifier 'acter:' at column 6 (try actor:).", 6, 6),
    ],
)
def test_errors_name_the_column_and_the_token(text: str, message: str, column: int, width: int) -> None:
    error = refused(text)
    assert (str(error), error.column, error.width) == (message, column, width)
    assert error.query == text.strip()


def test_the_pointer_marks_the_fault_in_a_long_query() -> None:
    error = refused("actor:a " * 20 + "acton:x team:b" + " team:c" * 10)
    line, caret = error.pointer(size=40)
    assert line.startswith("…") and line.endswith("…")
    assert line[caret.index("^") :].startswith("acton:")
    assert caret.strip() == "^^^^^^"
    assert refused("acter:x").pointer() == ("acter:x", "^^^^^^")


def test_limits_and_characters_of_the_whole_query() -> None:
    with pytest.raises(InvalidFilterError, match=r"^The search is too long \(at most 1000 characters\)\.$"):
        parse("a" * 1001)
    with pytest.raises(InvalidFilterError, match="control character"):
        parse("actor:a\tteam:b")
    with pytest.raises(InvalidFilterError, match="control character"):
        parse("lone \ud800")
    assert parse("   ") is None


def test_q_round_trips_through_from_args_and_to_args() -> None:
    """Exports store ``to_args()`` and read it again later: the search must come back equal."""
    args = {"q": '  actor:priya -team:"Équipe Zoë" created:2026-11-01..2026-11-03 ', "entity": "Team"}
    flt = AuditFilter.from_args(args, timezone=BERLIN)
    assert flt.to_args() == {
        "q": 'actor:priya -team:"Équipe Zoë" created:2026-11-01..2026-11-03',
        "entity": "Team",
    }
    assert AuditFilter.from_args(flt.to_args(), timezone=BERLIN) == flt
    # The single created: range narrows start and end, so the chart and the page see it.
    assert (flt.start, flt.end) == (
        dt.datetime(2026, 10, 31, 23, tzinfo=UTC),
        dt.datetime(2026, 11, 3, 22, 59, 59, 999999, tzinfo=UTC),
    )
    both = AuditFilter.from_args({**args, "start": "2026-11-02", "end": "2026-12-01"}, timezone=BERLIN)
    assert both.start == dt.datetime(2026, 11, 1, 23, tzinfo=UTC)
    assert both.to_args()["start"] == "2026-11-01T23:00:00+00:00" and "end" not in both.to_args()
    assert AuditFilter.from_args(both.to_args(), timezone=BERLIN) == both
    assert (
        AuditFilter.from_args({"q": " "}) == AuditFilter() and not AuditFilter.from_args({"q": "x"}).is_empty
    )


def test_the_walk_jumps_to_the_next_case_variant() -> None:
    """Between two values of the index the walk skips what no case variant of ``pri`` can be."""
    options = [search_sql.variants(char) for char in "pri"]
    assert options[2] == ["I", "i", "İ"]  # "İ" lowers to "i" in PostgreSQL and MariaDB
    cases = {
        "PRI": "PRI",
        "Priya@x": "Priya@x",
        "Paul": "PrI",
        "PRJ": "PRi",
        "prz": "prİ",
        "PZ": "PrI",
        "p": "pRI",
        "": "PRI",
        "A": "PRI",
        "q": None,
    }
    for value, expected in cases.items():
        assert next_variant(value, options) == expected, value
    assert search_sql.variants("k") == ["K", "k", "\u212a"]  # and the Kelvin sign
    assert search_sql.successor("a\U0010ffff") == "b" and search_sql.successor("\U0010ffff") is None
    assert search_sql.successor("a\ud7ff") == "a\ue000"


def test_sqlite_refuses_the_networks_it_cannot_compare_as_text() -> None:
    for ok in (
        "ip:10.0.0.0/8 ip:10.1.0.0/16 ip:1.2.3.0/24 ip:1.2.3.4/32 ip:0.0.0.0/0 ip:2001:db8::1",
        "team:x",
    ):
        assert search_sql.unsupported(parse(ok), "sqlite") is None
    reason = search_sql.unsupported(parse("team:x -ip:10.0.0.0/12"), "sqlite")
    assert reason == (
        "'-ip:10.0.0.0/12' at column 8 cannot be searched on SQLite, which stores addresses as text: use an"
        " address or an IPv4 network of /8, /16, /24 or /32 (PostgreSQL and MariaDB take any network)."
    )
    assert search_sql.unsupported(parse("ip:2001:db8::/32"), "sqlite") is not None
    assert search_sql.unsupported(parse("ip:2001:db8::/32"), "postgresql") is None


# Against the database: every term, with and without index ranges, on every backend.


SCOPE = Scope(retention_days=90, tenant_scoped=True, tenant_id="acme")


def _engine(site: Site) -> sa.Engine:
    with site.app.app_context():
        return audit_of(site.app)._state().engine


@pytest.fixture
def seeded(make_app: MakeApp) -> Site:
    site = build_site(make_app)
    now = utcnow()
    ev = site.event

    def row(activity: str, **fields: t.Any) -> dict[str, t.Any]:
        fields.setdefault("tenant_id", "acme")
        return ev(fields.pop("event_type", "team.created"), activity=activity, **fields)

    site.insert(
        row("priya signs in", event_type="user.login", actor_email="priya@acme.test", ip="203.0.113.7"),
        row("Priya fails", event_type="user.login_failed", actor_email="Priya.Shah@Acme.test", ip="10.1.2.3"),
        row(
            "bob renames",
            event_type="team.updated",
            actor_email="bob@acme.test",
            team="Équipe Zoë",
            ip="2001:db8::1",
        ),
        row(
            "carol adds",
            event_type="team.member_added",
            actor_email="carol@acme.test",
            team="growth",
            ip="unknown",
        ),
        row(
            "Changed role of bob to Admin",
            event_type="role.updated",
            actor_email=None,
            team="Growth",
            target_type="user",
            target_id="42",
        ),
        row(
            "Exported 50% of it", event_type="audit.exported", actor_email="pri_ya@acme.test", team="50%_off"
        ),
        row("other tenant priya", event_type="user.login", actor_email="priya@acme.test", tenant_id="globex"),
        row(
            "old priya",
            event_type="user.login",
            actor_email="priya@acme.test",
            occurred_at=now - dt.timedelta(days=120),
        ),
        row(
            "days ago",
            event_type="user.logout",
            actor_email="dave@acme.test",
            occurred_at=now - dt.timedelta(days=3),
        ),
    )
    return site


def found(site: Site, query: str, *, timezone: str = "UTC") -> set[str]:
    """The activities the search finds in tenant acme's window: as typed (``LIKE``), with its
    prefixes narrowed to stored values, and a page of ``fetch_page`` must all agree."""
    flt = AuditFilter.from_args({"q": query}, timezone=timezone)
    results = []
    with _engine(site).connect() as conn:
        page = fetch_page(conn, flt, limit=50, **SCOPE)
        for each in (flt, resolve(conn, flt, tenant_scoped=True, tenant_id="acme")):
            stmt = sa.select(audit_event_table.c.activity).where(*conditions(each, **SCOPE))
            results.append({activity for (activity,) in conn.execute(stmt)})
    assert results[0] == results[1]
    assert {row.activity for row in page.rows} == results[0]
    return results[0]


CASES: list[tuple[str, set[str]]] = [
    ("actor:priya", {"priya signs in", "Priya fails"}),
    ("actor:PRIYA.", {"Priya fails"}),
    ("actor:pri_", {"Exported 50% of it"}),
    ("actor:pri%", set()),
    ("actor:priya actor:bob", {"priya signs in", "Priya fails", "bob renames"}),
    ("-actor:priya -actor:bob -actor:carol -actor:pri", {"Changed role of bob to Admin", "days ago"}),
    ("team:GROW", {"carol adds", "Changed role of bob to Admin"}),
    ('team:"Équipe Zoë"', {"bob renames"}),
    ("team:50%", {"Exported 50% of it"}),
    ("-team:growth", {"priya signs in", "Priya fails", "bob renames", "Exported 50% of it", "days ago"}),
    ("type:team.*", {"bob renames", "carol adds"}),
    ("type:TEAM.*", {"bob renames", "carol adds"}),
    ("type:user.login", {"priya signs in"}),
    ("type:user.login type:role.updated", {"priya signs in", "Changed role of bob to Admin"}),
    ("-type:user.* -type:team.*", {"Changed role of bob to Admin", "Exported 50% of it"}),
    ("entity:Login", {"priya signs in", "Priya fails", "days ago"}),
    ("entity:login outcome:failure", {"Priya fails"}),
    ("action:export action:delete", {"Exported 50% of it"}),
    ("target:USER", {"Changed role of bob to Admin"}),
    ("target:user:42", {"Changed role of bob to Admin"}),
    ("target:user:4", set()),
    (
        "-target:user",
        {"priya signs in", "Priya fails", "bob renames", "carol adds", "Exported 50% of it", "days ago"},
    ),
    ("ip:203.0.113.7", {"priya signs in"}),
    ("ip:10.0.0.0/8 ip:203.0.113.0/24", {"priya signs in", "Priya fails"}),
    (
        "-ip:10.0.0.0/8",
        {
            "priya signs in",
            "bob renames",
            "carol adds",
            "Changed role of bob to Admin",
            "Exported 50% of it",
            "days ago",
        },
    ),
    ("ip:2001:db8::1", {"bob renames"}),
    ("priya", {"priya signs in", "Priya fails"}),
    ("bob admin", {"Changed role of bob to Admin"}),
    ('"of it"', {"Exported 50% of it"}),
    ("50%", {"Exported 50% of it"}),
    ("-priya -bob -carol", {"Exported 50% of it", "days ago"}),
    ("actor:priya team:growth", set()),
]


def test_each_term_finds_what_it_says_on_every_backend(seeded: Site) -> None:
    """Same qualifier: either; different ones: both; ``-`` excludes, NULLs included. Only
    tenant acme's events in the window, whatever the search."""
    wrong = {}
    for query, expected in CASES:
        got = found(seeded, query)
        if got != expected:
            wrong[query] = got
    assert wrong == {}


def test_dates_networks_case_folding_and_odd_values_on_every_backend(seeded: Site, backend: str) -> None:
    three_days_ago = (utcnow() - dt.timedelta(days=3)).date()
    assert found(seeded, f"created:{three_days_ago}") == {"days ago"}
    assert found(seeded, f"-created:{three_days_ago} actor:d") == set()
    assert "days ago" not in found(seeded, f"created:>{three_days_ago}")
    assert found(seeded, f"created:<{three_days_ago + dt.timedelta(days=1)}") == {"days ago"}
    assert found(seeded, f"created:{three_days_ago} created:{utcnow().date()}") >= {
        "days ago",
        "priya signs in",
    }
    assert found(seeded, "created:<2000-01-01") == set()

    # Networks: any on PostgreSQL and MariaDB; octet-aligned IPv4 only on SQLite.
    if backend == "sqlite":
        with pytest.raises(InvalidFilterError, match="cannot be searched on SQLite"):
            found(seeded, "ip:10.0.0.0/9")
    else:
        assert found(seeded, "ip:10.0.0.0/9") == {"Priya fails"}
        assert found(seeded, "ip:2001:db8::/32") == {"bob renames"}
        assert found(seeded, "ip:::/0") == {"bob renames"}
        assert "Priya fails" not in found(seeded, "-ip:0.0.0.0/1")

    # ASCII letters fold everywhere; PostgreSQL and MariaDB fold É as well, SQLite does not.
    assert found(seeded, "team:éQUIPE") == (set() if backend == "sqlite" else {"bob renames"})
    assert found(seeded, "team:ÉQUIPE") == {"bob renames"}

    # Quotes, backslashes and percents in values are data.
    for query in ('actor:"o\'brien"', r'team:"back\\slash"', '"\'); DROP TABLE audit_event; --"', "100%(x)s"):
        assert found(seeded, query) == set()
    with _engine(seeded).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_event_table)).scalar() == 10
        # The test servers use C collations: every backend here narrows prefixes by index.
        assert code_point_order(conn) is True
        page = fetch_page(
            conn, AuditFilter.from_args({"q": "actor:priya", "outcome": "failure"}), limit=9, **SCOPE
        )
    assert [row.activity for row in page.rows] == ["Priya fails"]


def test_search_is_empty_when_constructed_without_terms() -> None:
    assert search_sql.clauses(Search("x", ())) == []


# Narrowing prefixes to stored values, and pages read one branch per value.


def test_prefixes_are_narrowed_to_the_values_stored(make_app: MakeApp, backend: str) -> None:
    site = build_site(make_app)
    names = [f"user{n}@x.test" for n in range(70)] + ["USER5@Y.test", "uSEr5b@z.test", "Paul@x.test", "prz@x"]
    site.insert(
        *[site.event(tenant_id="acme", actor_email=name, team=f"T{n % 3}") for n, name in enumerate(names)]
    )
    site.insert(site.event(tenant_id="globex", actor_email="user5-globex@x.test"))

    def narrowed(query: str, tenant: str | None = "acme") -> object:
        flt = AuditFilter.from_args({"q": query})
        with _engine(site).connect() as conn:
            done = resolve(conn, flt, tenant_scoped=True, tenant_id=tenant)
        assert done.q is not None
        return done.q.terms[0].value

    fives = ["USER5@Y.test", "uSEr5b@z.test", "user5@x.test", *(f"user5{n}@x.test" for n in range(10))]
    assert narrowed("actor:user5") == Stored(tuple(sorted(fives)))
    assert narrowed("actor:pr") == Stored(("prz@x",))
    assert narrowed("actor:nobody") == Stored(())
    assert narrowed("team:t1") == Stored(("T1",))
    assert narrowed("type:team.*") == Stored(("team.created",))
    assert narrowed("actor:user") == "user"  # more than MAX_VALUES: the LIKE stays
    assert narrowed("-actor:user5") == "user5"  # excluded terms are never narrowed
    assert narrowed("actor:user5", tenant="globex") == Stored(("user5-globex@x.test",))


def test_a_page_of_a_few_values_reads_one_branch_each(make_app: MakeApp) -> None:
    site = build_site(make_app)
    start = utcnow() - dt.timedelta(minutes=1)
    rows = []
    for n in range(40):
        who = ("ann@x.test", "Bob@x.test", "bob@y.test", "carl@x.test")[n % 4]
        when = start - dt.timedelta(minutes=n // 2)  # pairs share a time: the id breaks the tie
        rows.append(site.event(tenant_id="acme", actor_email=who, activity=f"E{n}", occurred_at=when))
    site.insert(*rows)
    flt = AuditFilter.from_args({"q": "actor:ann actor:bob action:create action:update"})
    with _engine(site).connect() as conn:
        narrowed = resolve(conn, flt, tenant_scoped=True, tenant_id="acme")
        assert len(sql.value_branches(narrowed)) == 3  # ann, Bob and bob
        seen, cursor, pages = [], None, 0
        while True:
            page = fetch_page(conn, dataclasses.replace(narrowed, cursor=cursor), limit=7, **SCOPE)
            seen += [row.activity for row in page.rows]
            pages += 1
            if page.older is None:
                break
            cursor = page.older
        back = fetch_page(conn, dataclasses.replace(narrowed, cursor=page.newer), limit=7, **SCOPE)
    # Newest first; each pair shares a time, and the later id comes first.
    expected = [f"E{n}" for n in sorted(range(40), key=lambda n: (n // 2, -n)) if n % 4 != 3]
    assert seen == expected and pages == 5
    assert [row.activity for row in back.rows] == expected[21:28]


def test_without_a_tenant_loader_prefixes_are_narrowed_only_when_no_event_has_a_tenant(
    make_app: MakeApp,
) -> None:
    site = build_site(make_app)
    site.insert(site.event(actor_email="priya@x.test", activity="mine"))
    unscoped = Scope(retention_days=90, tenant_scoped=False, tenant_id=None)
    flt = AuditFilter.from_args({"q": "actor:PRI"})
    with _engine(site).connect() as conn:
        assert resolve(conn, flt, **_tenant(unscoped)).q == dataclasses.replace(
            t.cast(Search, flt.q),
            terms=(dataclasses.replace(t.cast(Search, flt.q).terms[0], value=Stored(("priya@x.test",))),),
        )
    site.insert(site.event(actor_email="pria@x.test", tenant_id="globex", activity="theirs"))
    with _engine(site).connect() as conn:
        assert resolve(conn, flt, **_tenant(unscoped)) == flt
        assert {row.activity for row in fetch_page(conn, flt, limit=9, **unscoped).rows} == {"mine", "theirs"}


def _tenant(scope: Scope) -> dict[str, t.Any]:
    return {"tenant_scoped": scope["tenant_scoped"], "tenant_id": scope["tenant_id"]}
