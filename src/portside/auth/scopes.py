"""Docker token-auth scopes: `repository:acme/app:pull,push` and `registry:catalog:*`.

An Access is one resource and the actions asked for or granted on it. Parsing is strict
about the resource type and actions and tolerant of what clients really send (several
`scope` parameters, or several scopes separated by spaces in one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portside.errors import NameInvalid
from portside.reference import validate_name

REPOSITORY_ACTIONS = frozenset({"pull", "push", "delete"})


class ScopeInvalid(ValueError):
    """A scope string that does not follow `type:name:actions`."""


@dataclass(frozen=True, slots=True)
class Access:
    type: str  # "repository" or "registry"
    name: str
    actions: frozenset[str]

    def claim(self) -> dict[str, object]:
        """The form used in a token's `access` claim."""
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scope(text: str) -> Access:
    # The name may itself contain ':' only in a registry host prefix, which clients strip;
    # split type from the front and actions from the back.
    resource_type, sep, rest = text.partition(":")
    name, sep2, actions_text = rest.rpartition(":")
    if not sep or not sep2 or not name:
        raise ScopeInvalid(f"scope {text!r} is not type:name:actions")
    actions = frozenset(a for a in actions_text.split(",") if a)
    if resource_type == "repository":
        try:
            validate_name(name)
        except NameInvalid as error:
            raise ScopeInvalid(f"scope {text!r}: {error.message}") from error
        if "*" in actions:
            actions = REPOSITORY_ACTIONS
        unknown = actions - REPOSITORY_ACTIONS
        if unknown:
            raise ScopeInvalid(f"scope {text!r}: unknown action(s) {', '.join(sorted(unknown))}")
    elif resource_type == "registry":
        if name != "catalog" or actions != {"*"}:
            raise ScopeInvalid(f"scope {text!r}: only registry:catalog:* is known")
    else:
        raise ScopeInvalid(f"scope {text!r}: unknown resource type {resource_type!r}")
    return Access(resource_type, name, actions)


def parse_scopes(values: Iterable[str]) -> list[Access]:
    """All scopes from the `scope` parameters, merged per resource."""
    merged: dict[tuple[str, str], frozenset[str]] = {}
    for value in values:
        for text in value.split():
            access = parse_scope(text)
            key = (access.type, access.name)
            merged[key] = merged.get(key, frozenset()) | access.actions
    return [Access(t, n, a) for (t, n), a in merged.items()]
