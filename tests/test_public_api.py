from __future__ import annotations
import __future__

import types

import flask_audit
from flask_audit import signals


def test_all_is_sorted_and_complete() -> None:
    assert flask_audit.__all__ == sorted(flask_audit.__all__)
    public = {
        name
        for name, value in vars(flask_audit).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType | __future__._Feature)
    }
    assert public | {"signals"} == set(flask_audit.__all__)


def test_signals_have_kebab_case_names_and_docs() -> None:
    from blinker import NamedSignal

    found = {name: value for name, value in vars(signals).items() if isinstance(value, NamedSignal)}
    assert "role_updated" in found and "login_failed" in found and "event_recorded" in found
    for attribute, signal in found.items():
        assert signal.name == attribute.replace("_", "-")
