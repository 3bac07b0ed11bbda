from __future__ import annotations

import importlib.resources
import pathlib

import jinja2
import pytest
from flask import Flask
from flask import render_template_string

from ..conftest import MakeApp
from ..views_fixtures import activities
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX

TESTS = pathlib.Path(__file__).parent.parent
PACKAGED = importlib.resources.files("flask_audit") / "templates" / "flask_audit"


def test_every_documented_template_ships() -> None:
    names = {entry.name for entry in PACKAGED.iterdir()}
    expected = {"base.html", "index.html", "_filters.html", "_table.html", "_pagination.html", "_chart.html"}
    assert expected | {"_macros.html", "_rows.html", "forbidden.html"} <= names
    css = importlib.resources.files("flask_audit") / "static" / "flask_audit" / "audit.css"
    assert css.is_file()


def test_an_app_template_overrides_the_packaged_page(make_app: MakeApp) -> None:
    """tests/apps.py roots its app in tests/, so tests/templates is the app's template folder."""
    site = build_site(make_app)
    site.app.template_folder = "templates"
    assert pathlib.Path(site.app.root_path, "templates") == TESTS / "templates"
    site.insert(site.event(activity="Renamed team Growth to Expansion"))
    html = site.client(site.admin).get(f"{PREFIX}/").text
    assert '<h1 id="custom-audit-page">Security log</h1>' in html
    assert "<title>Security log · Example Inc.</title>" in html
    assert '<meta name="x-override" content="tests/templates">' in html
    assert "Renamed team Growth to Expansion" in activities(html)
    assert 'class="fa-card fa-filters"' in html  # the packaged partial, included by the override
    assert "Audit logs</h1>" not in html


def test_a_jinja_loader_override_wins_too(make_app: MakeApp) -> None:
    site = build_site(make_app)
    site.app.jinja_loader = jinja2.DictLoader(
        {"flask_audit/_table.html": '<p id="custom-table">{{ events|length }} rows</p>'}
    )
    site.insert(site.event())
    html = site.client(site.admin).get(f"{PREFIX}/").text
    assert '<p id="custom-table">2 rows</p>' in html  # with the table's own audit.enabled row
    assert "Audit logs</h1>" in html


@pytest.mark.backends("sqlite")
def test_base_template_blocks(app: Flask) -> None:
    app.template_folder = None
    with app.test_request_context():
        html = render_template_string(
            '{% extends "flask_audit/base.html" %}{% block title %}T{% endblock %}'
            '{% block head %}<meta name="h">{% endblock %}{% block content %}<p>C</p>{% endblock %}'
        )
    assert "<title>T</title>" in html and '<meta name="h">' in html and "<p>C</p>" in html
    assert f'href="{PREFIX}/static/flask_audit/audit.css"' in html


def test_the_page_and_flask_appbuilders_panel_share_one_row_loop() -> None:
    """The rows are written once, in _rows.html; each page only names its classes."""
    rows = (PACKAGED / "_rows.html").read_text("utf-8")
    assert rows.count("{% for event in events %}") == 1
    for name in ("_table.html", "fab/index.html"):
        source = (PACKAGED / name).read_text("utf-8")
        assert '{% include "flask_audit/_rows.html" %}' in source, name
        assert "{% for event in events %}" not in source and "<tr" not in source, name
