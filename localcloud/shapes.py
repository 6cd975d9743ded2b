"""Requests checked against a botocore service model, refused in the words AWS JSON services use.

Such a service first reads the body into the operation's input shape (a value of the wrong JSON
type is a SerializationException), then checks every constraint and lists all violations in one
ValidationException.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import ServiceModel, Shape

# Shape name -> metadata (required, min, max, pattern, enum) replacing the model's.
Overlay = Mapping[str, Mapping[str, Any]]
Constraint = tuple[str, Callable[[Any], bool]]

_SCALARS = frozenset({"string", "integer", "long", "float", "double", "boolean", "timestamp"})
_NUMBERS = frozenset({"integer", "long", "float", "double"})
_INT_BOUND = {"integer": 2**31, "long": 2**63}  # Java int and long
# "<TOKEN> can not be converted to <type>": public reports show NUMBER_VALUE -> "a String" and
# STRING_VALUE -> "an Integer"; the other names follow the same form (UNCONFIRMED).
_JAVA_TYPE = {
    "string": "a String",
    "integer": "an Integer",
    "long": "a Long",
    "float": "a Float",
    "double": "a Double",
    "boolean": "a Boolean",
    "timestamp": "a Date",
    "structure": "a Structure",
    "list": "a List",
    "map": "a Map",
}


class SerializationError(Exception):
    """A value of the wrong JSON type: the service cannot read the request at all."""


@functools.cache
def service_model(name: str) -> ServiceModel:
    """The service's botocore model, loaded once per process (the same one the SDK uses)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def check(shape: Shape, value: Any, overlay: Overlay | None = None) -> tuple[Any, list[str]]:
    """(the value as the service reads it, each violated constraint); SerializationError first."""
    walker = _Walker(overlay or {})
    return walker.visit(shape, value, ""), walker.problems


def combine(problems: list[str]) -> str:
    """One ValidationException message for all the problems, as the services count them."""
    noun = "error" if len(problems) == 1 else "errors"
    return f"{len(problems)} validation {noun} detected: " + "; ".join(problems)


class _Walker:
    def __init__(self, overlay: Overlay) -> None:
        self.overlay = overlay
        self.problems: list[str] = []

    def visit(self, shape: Shape, value: Any, path: str) -> Any:
        kind = shape.type_name
        value = _read(kind, value)
        meta = {**shape.metadata, **self.overlay.get(shape.name, {})}
        if kind == "structure":
            return self._structure(shape, meta, value, path)
        self._fail_each(meta, kind, value, path)
        if kind == "list":
            return [
                self._item(shape.member, item, f"{path}.{i}.member")
                for i, item in enumerate(value, 1)
            ]
        if kind == "map":
            return self._map(shape, value, path)
        return value

    def _structure(self, shape: Shape, meta: dict[str, Any], value: dict, path: str) -> dict:
        required = meta.get("required", ())
        out = {}
        # Only modelled members are read: the services ignore unknown ones (so that a newer
        # client still reaches an older endpoint), and so the checked copy leaves them out.
        for name, member in shape.members.items():
            where = f"{path}.{_wire(name)}" if path else _wire(name)
            if value.get(name) is not None:
                out[name] = self.visit(member, value[name], where)
            elif name in required:
                self._null(where)
        return out

    def _item(self, shape: Shape, value: Any, path: str) -> Any:
        if value is None:
            self._null(path)
            return None
        return self.visit(shape, value, path)

    def _map(self, shape: Any, value: dict, path: str) -> dict:
        if shape.value.type_name not in _SCALARS:
            return {k: self._item(shape.value, v, f"{path}.{k}") for k, v in value.items()}
        # Scalar keys and values: one problem for the whole map per side, listing every constraint.
        out = {}
        bad_key = bad_value = False
        key_rules, value_rules = self._rules(shape.key), self._rules(shape.value)
        for key, item in value.items():
            bad_key |= not all(test(key) for _, test in key_rules)
            if item is None:
                bad_value = True
                continue
            out[key] = item = _read(shape.value.type_name, item)
            bad_value |= not all(test(item) for _, test in value_rules)
        for bad, side, rules in (
            (bad_key, "Map keys", key_rules),
            (bad_value, "Map value", value_rules),
        ):
            if bad:
                listed = ", ".join(text for text, _ in rules) or "Member must not be null"
                self._problem(value, path, f"{side} must satisfy constraint: [{listed}]")
        return out

    def _rules(self, shape: Shape) -> list[Constraint]:
        return _constraints(shape.type_name, {**shape.metadata, **self.overlay.get(shape.name, {})})

    def _fail_each(self, meta: dict[str, Any], kind: str, value: Any, path: str) -> None:
        for text, test in _constraints(kind, meta):
            if not test(value):
                self._problem(value, path, text)

    def _problem(self, value: Any, path: str, text: str) -> None:
        self.problems.append(
            f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: {text}"
        )

    def _null(self, path: str) -> None:
        self.problems.append(
            f"Value null at '{path}' failed to satisfy constraint: Member must not be null"
        )


def _wire(name: str) -> str:
    """How a member is named in the services' messages: its first letter in lower case."""
    return name[:1].lower() + name[1:]


def _token(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN_VALUE"  # UNCONFIRMED: the services' name for a true/false token
    return "NUMBER_VALUE" if isinstance(value, int | float) else "STRING_VALUE"


def _read(kind: str, value: Any) -> Any:
    """The value as the service reads a `kind` (numbers normalised), or SerializationError."""
    if isinstance(value, list):
        if kind != "list":
            raise SerializationError("Start of list found where not expected")
        return value
    if isinstance(value, dict):
        if kind not in ("structure", "map"):
            raise SerializationError("Start of structure or map found where not expected")
        return value
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in _NUMBERS or kind == "timestamp":  # timestamps: epoch seconds, as botocore sends
        expected = is_number
    elif kind == "boolean":
        expected = isinstance(value, bool)
    else:  # strings (blobs too, base64), and no scalar is a structure, list or map
        expected = isinstance(value, str) and kind not in ("structure", "list", "map")
    refusal = f"{_token(value)} can not be converted to {_JAVA_TYPE.get(kind, 'a String')}"
    if not expected or (is_number and not math.isfinite(value)):
        raise SerializationError(refusal)
    if kind in _INT_BOUND:
        value = int(value)  # INFERRED: the services truncate a fraction sent for an integer
        if not -_INT_BOUND[kind] <= value < _INT_BOUND[kind]:
            raise SerializationError(refusal)
    return value


def _constraints(kind: str, meta: Mapping[str, Any]) -> list[Constraint]:
    """A shape's constraints in the order the services list them, each with its test."""
    if kind in _NUMBERS:
        measure, what = (lambda v: v), "value"
    elif kind in ("string", "list", "map"):
        measure, what = len, "length"
    else:
        return []
    low, high = meta.get("min"), meta.get("max")
    rules: list[Constraint] = []
    if high is not None:
        text = f"Member must have {what} less than or equal to {high}"
        rules.append((text, lambda v: measure(v) <= high))
    if low is not None:
        text = f"Member must have {what} greater than or equal to {low}"
        rules.append((text, lambda v: measure(v) >= low))
    pattern, allowed = meta.get("pattern"), meta.get("enum")
    if kind == "string" and pattern is not None:
        text = f"Member must satisfy regular expression pattern: {pattern}"
        rules.append((text, lambda v: _compiled(pattern).fullmatch(v) is not None))
    if kind == "string" and allowed:
        text = f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        rules.append((text, lambda v: v in allowed))
    return rules


@functools.cache
def _compiled(pattern: str) -> Any:
    import regex  # the models' patterns are Java's: \p{L} and friends, which `re` lacks

    return regex.compile(pattern)  # used with fullmatch, as the services use Java's matches()


def _show(value: Any) -> str:
    """A value as the services echo it (Java's toString of what they read)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return "null" if value is None else str(value)
