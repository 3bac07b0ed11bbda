"""How an event's ``details`` read on its page: before and after as a diff, the rest as a list.

The capture paths shape a change in a few ways, and :func:`split` knows each of them:

- ``{"before": x, "after": y}``: the event's own value (a role, the roles of a user);
- ``{"changes": {field: [old, new]}}``: a tracked update (``audit.track``, the identity stacks);
- ``{field: {"before": x, "after": y}}``: one of several settings (SSO metadata);
- ``{field: {"added": [...], "removed": [...]}}``: members of a set (a role's permissions).

A value that is a list on both sides is a set: its items are shown added, removed or kept.
What is left becomes :class:`Item` rows of a definition list. Fields are shown in the order
of their keys. Nothing here reads the request.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import json
import typing as t

#: Words a label shows in capitals ("sso_url" reads "SSO URL").
ACRONYMS = frozenset({"id", "ip", "sso", "url", "uri", "idp", "saml", "totp", "otp", "mfa", "api", "uid"})
#: Below this depth a nested value is shown as compact JSON.
MAX_DEPTH = 4
_SET_KEYS = frozenset({"added", "removed"})
_CHANGE_KEYS = frozenset({"before", "after"}) | _SET_KEYS


def label(key: str) -> str:
    """A details key as a label: ``"signing_fingerprints"`` reads "Signing fingerprints"."""
    words = str(key).replace("_", " ").replace("-", " ").split()
    shown = [word.upper() if word.lower() in ACRONYMS else word for word in words]
    text = " ".join(shown) or str(key)
    return text[:1].upper() + text[1:]


def text(value: t.Any) -> str:
    """One value as text: ``None`` reads "none", booleans "Yes" and "No", the rest as JSON."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


@dataclasses.dataclass(frozen=True)
class Change:
    """One changed field: its label, and either before and after or the items of a set.

    ``is_set`` tells which: a set lists ``added``, ``removed`` and ``kept`` items (as text),
    a value has ``before`` and ``after`` (as text).
    """

    label: str
    before: str = ""
    after: str = ""
    is_set: bool = False
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, before: t.Any, after: t.Any) -> Change:
        """The change of ``name`` from ``before`` to ``after``; lists (or none) are sets."""
        lists = isinstance(before, list | type(None)) and isinstance(after, list | type(None))
        if lists and (before is not None or after is not None):
            old, new = [text(item) for item in before or ()], [text(item) for item in after or ()]
            return cls(
                name,
                is_set=True,
                added=tuple(item for item in new if item not in old),
                removed=tuple(item for item in old if item not in new),
                kept=tuple(item for item in new if item in old),
            )
        return cls(name, before=text(before), after=text(after))

    @classmethod
    def of_sets(cls, name: str, added: c.Iterable[t.Any], removed: c.Iterable[t.Any]) -> Change:
        """A set change told as the items added and removed."""
        return cls(name, is_set=True, added=_texts(added), removed=_texts(removed))


def _texts(values: c.Iterable[t.Any]) -> tuple[str, ...]:
    return tuple(text(value) for value in values)


def _pair(value: t.Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def _field_change(name: str, value: t.Any) -> Change | None:
    """``{"before", "after"}`` or ``{"added", "removed"}`` under one key, else ``None``."""
    if not isinstance(value, dict) or not value or not set(value) <= _CHANGE_KEYS:
        return None
    if "before" in value and "after" in value:
        return Change.of(label(name), value["before"], value["after"])
    if set(value) <= _SET_KEYS and all(isinstance(items, list) for items in value.values()):
        return Change.of_sets(label(name), value.get("added", ()), value.get("removed", ()))
    return None


def split(details: t.Any, *, subject: str) -> tuple[list[Change], dict[str, t.Any]]:
    """The changes in ``details`` and what is left of them.

    :param subject: the label of the event's own ``before``/``after`` (the entity, "Role").
    """
    if not isinstance(details, dict):
        return [], {} if details is None else {"value": details}
    rest = dict(details)
    changes: list[Change] = []
    if "before" in rest or "after" in rest:
        changes.append(Change.of(subject, rest.pop("before", None), rest.pop("after", None)))
    tracked = rest.get("changes")
    if isinstance(tracked, dict) and tracked and all(_pair(value) for value in tracked.values()):
        del rest["changes"]
        changes += [Change.of(label(name), *value) for name, value in sorted(tracked.items())]
    for name, value in sorted(rest.items()):
        change = _field_change(name, value)
        if change is not None:
            changes.append(change)
            del rest[name]
    return changes, rest


@dataclasses.dataclass(frozen=True)
class Item:
    """One row of the details list: a label and either a text, a list of texts or rows."""

    label: str
    text: str | None = None
    values: tuple[str, ...] = ()
    children: tuple[Item, ...] = ()
    empty: bool = False


def items(details: c.Mapping[str, t.Any], depth: int = 0) -> list[Item]:
    """``details`` as definition list rows, nested mappings as nested lists, keys in order:
    PostgreSQL's ``jsonb`` keeps no order of its own, so every backend shows the same."""
    return [_item(label(name), value, depth) for name, value in sorted(details.items())]


def _item(name: str, value: t.Any, depth: int) -> Item:
    if value is None or value == "" or value == [] or value == {}:
        return Item(name, text="none", empty=True)
    if depth < MAX_DEPTH and isinstance(value, dict):
        return Item(name, children=tuple(items(value, depth + 1)))
    if depth < MAX_DEPTH and isinstance(value, list):
        if all(not isinstance(entry, dict | list) for entry in value):
            return Item(name, values=_texts(value))
        rows = (_item(str(n), entry, depth + 1) for n, entry in enumerate(value, 1))
        return Item(name, children=tuple(rows))
    return Item(name, text=text(value))
