"""Protocol shapes declared once as TypedDicts, turned into JSON Schema and voluptuous validators.

Every REST body, event payload and WebSocket frame of the hub is a TypedDict in `protocol` or
`event_payloads`. The OpenAPI document takes its schemas from `json_schema()` and request bodies
are checked by `validator()`, so the document and the checks cannot drift apart.

Constraints ride along as `Annotated` metadata: `Annotated[float, Range(0, 1)]`.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

import voluptuous as vol


@dataclass(frozen=True)
class Range:
    """Inclusive numeric bounds."""

    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Length:
    """Bounds on the length of a string or list."""

    min_length: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class Pattern:
    """A regular expression a string must match (anchored at both ends)."""

    regex: str


@dataclass(frozen=True)
class Doc:
    """A description for the OpenAPI document."""

    text: str


@dataclass(frozen=True)
class PartialOf:
    """`Annotated[dict[str, Any], PartialOf(Shape)]`: any subset of Shape's keys (a PATCH body).

    With `nullable`, each key may also be null.
    """

    shape: Any
    nullable: bool = False

    @property
    def name(self) -> str:
        return self.shape.__name__ + ("Patch" if self.nullable else "Partial")


SchemaDict = dict[str, Any]


class SchemaRegistry:
    """Collects the named component schemas that `json_schema` refers to."""

    def __init__(self, ref_prefix: str = "#/components/schemas/") -> None:
        self.ref_prefix = ref_prefix
        self.components: dict[str, SchemaDict] = {}

    def ref(self, shape: Any) -> SchemaDict:
        """A `$ref` to the component of a TypedDict, registering it (and what it uses)."""
        name = shape.__name__
        if name not in self.components:
            self.components[name] = {}  # placeholder first: shapes may refer to themselves
            self.components[name] = _typeddict_schema(shape, self)
        return {"$ref": self.ref_prefix + name}

    def ref_partial(self, partial: PartialOf) -> SchemaDict:
        if partial.name not in self.components:
            schema = dict(self.ref_resolved(partial.shape))
            schema.pop("required", None)
            if partial.nullable:
                schema["properties"] = {
                    key: _nullable(value) for key, value in schema["properties"].items()
                }
            schema["description"] = f"Any subset of {partial.shape.__name__}" + (
                "; null resets a field to its default" if partial.nullable else ""
            )
            self.components[partial.name] = schema
        return {"$ref": self.ref_prefix + partial.name}

    def ref_resolved(self, shape: Any) -> SchemaDict:
        self.ref(shape)
        return self.components[shape.__name__]

    def add(self, name: str, schema: SchemaDict) -> SchemaDict:
        """Register a schema built by hand from other shapes (e.g. a oneOf of frames)."""
        self.components[name] = schema
        return {"$ref": self.ref_prefix + name}


def json_schema(annotation: Any, registry: SchemaRegistry) -> SchemaDict:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses it) for a type annotation."""
    annotation, constraints = unwrap(annotation)
    for constraint in constraints:
        if isinstance(constraint, PartialOf):
            return registry.ref_partial(constraint)
    schema = _bare_schema(annotation, registry)
    for constraint in constraints:
        schema.update(_constraint_schema(constraint, schema))
    return schema


def _bare_schema(annotation: Any, registry: SchemaRegistry) -> SchemaDict:
    if is_typeddict(annotation):
        return registry.ref(annotation)
    origin = get_origin(annotation)
    if annotation is Any:
        return {}
    if annotation is None or annotation is type(None):
        return {"type": "null"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is str:
        return {"type": "string"}
    if origin is Literal:
        values = list(get_args(annotation))
        return {"const": values[0]} if len(values) == 1 else {"enum": values}
    if origin in (list, tuple):
        (item,) = get_args(annotation)[:1]
        return {"type": "array", "items": json_schema(item, registry)}
    if origin in (dict, Mapping):
        _key, value = get_args(annotation)
        return {"type": "object", "additionalProperties": json_schema(value, registry)}
    if origin in (Union, types.UnionType):
        members = get_args(annotation)
        non_null = [m for m in members if m is not type(None)]
        if len(non_null) == 1:
            inner = json_schema(non_null[0], registry)
            return _nullable(inner)
        choices = [json_schema(m, registry) for m in members]
        return {"anyOf": choices}
    raise TypeError(f"no JSON Schema for {annotation!r}")


def _nullable(schema: SchemaDict) -> SchemaDict:
    if "type" in schema and isinstance(schema["type"], str):
        widened = dict(schema, type=[schema["type"], "null"])
        if "enum" in widened:
            widened["enum"] = [*widened["enum"], None]
        return widened
    return {"anyOf": [schema, {"type": "null"}]}


def required_keys(shape: Any) -> frozenset[str]:
    """The keys a TypedDict requires.

    Computed from the evaluated hints: with `from __future__ import annotations`, Python 3.11's
    own `__required_keys__` cannot see `NotRequired[...]` inside string annotations.
    """
    hints = get_type_hints(shape, include_extras=True)
    required = set()
    for name, hint in hints.items():
        origin = get_origin(hint)
        if origin is Required:
            required.add(name)
        elif origin is not NotRequired:
            owner = next(
                k for k in reversed(shape.__mro__) if name in getattr(k, "__annotations__", {})
            )
            if getattr(owner, "__total__", True):
                required.add(name)
    return frozenset(required)


def _typeddict_schema(shape: Any, registry: SchemaRegistry) -> SchemaDict:
    hints = get_type_hints(shape, include_extras=True)
    properties = {name: json_schema(hint, registry) for name, hint in hints.items()}
    required = sorted(required_keys(shape))
    schema: SchemaDict = {
        "type": "object",
        "properties": properties,
        # Closed: a field the hub sends but the document does not name is a documentation bug.
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    if shape.__doc__ and shape.__doc__ != TypedDict.__doc__:
        schema["description"] = " ".join(shape.__doc__.split())
    return schema


def _constraint_schema(constraint: Any, schema: SchemaDict) -> SchemaDict:
    if isinstance(constraint, Range):
        bounds: SchemaDict = {}
        if constraint.minimum is not None:
            bounds["minimum"] = constraint.minimum
        if constraint.maximum is not None:
            bounds["maximum"] = constraint.maximum
        return bounds
    if isinstance(constraint, Length):
        is_array = schema.get("type") == "array"
        low, high = ("minItems", "maxItems") if is_array else ("minLength", "maxLength")
        out: SchemaDict = {}
        if constraint.min_length is not None:
            out[low] = constraint.min_length
        if constraint.max_length is not None:
            out[high] = constraint.max_length
        return out
    if isinstance(constraint, Pattern):
        return {"pattern": f"^(?:{constraint.regex})$"}
    if isinstance(constraint, Doc):
        return {"description": constraint.text}
    return {}


def unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip Annotated / Required / NotRequired, keeping the Annotated metadata."""
    constraints: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            args = get_args(annotation)
            annotation = args[0]
            constraints.extend(args[1:])
        elif origin in (Required, NotRequired):
            annotation = get_args(annotation)[0]
        else:
            return annotation, constraints


# ---- validation -------------------------------------------------------------------------------


def validator(shape: Any, *, partial: bool = False, nullable: bool = False) -> vol.Schema:
    """A strict voluptuous schema for a TypedDict: exact types, no unknown keys.

    `partial` makes every key optional (a PATCH body); `nullable` also accepts null for each key.
    """
    hints = get_type_hints(shape, include_extras=True)
    required = required_keys(shape)
    fields: dict[Any, Any] = {}
    for name, hint in hints.items():
        check = value_validator(hint)
        if nullable:
            check = _or_null(check)
        marker = vol.Required if name in required and not partial else vol.Optional
        fields[marker(name)] = check
    return vol.Schema(fields, extra=vol.PREVENT_EXTRA)


def _or_null(check: Any) -> Callable[[Any], Any]:
    """Like vol.Any(None, check) but keeping check's own error message."""
    compiled = vol.Schema(check)

    def validate(value: Any) -> Any:
        return None if value is None else compiled(value)

    return validate


def body_validator(annotation: Any) -> vol.Schema:
    """The validator of a request body declared as a TypedDict or a `PartialOf` annotation."""
    if is_typeddict(annotation):
        return validator(annotation)
    _bare, constraints = unwrap(annotation)
    for constraint in constraints:
        if isinstance(constraint, PartialOf):
            return validator(constraint.shape, partial=True, nullable=constraint.nullable)
    raise TypeError(f"{annotation!r} is not a request body shape")


def value_validator(annotation: Any) -> Any:
    annotation, constraints = unwrap(annotation)
    for constraint in constraints:
        if isinstance(constraint, PartialOf):
            return validator(constraint.shape, partial=True, nullable=constraint.nullable)
    check = _bare_validator(annotation)
    extra = [v for c in constraints if (v := _constraint_validator(c)) is not None]
    return vol.All(check, *extra) if extra else check


def _bare_validator(annotation: Any) -> Any:
    if is_typeddict(annotation):
        return validator(annotation)
    origin = get_origin(annotation)
    if annotation is Any:
        return object
    if annotation is None or annotation is type(None):
        return None
    if annotation in (bool, int, float, str):
        return _exact_type(annotation)
    if origin is Literal:
        values = get_args(annotation)
        return vol.In(values, msg=f"expected one of {', '.join(map(str, values))}")
    if origin in (list, tuple):
        (item,) = get_args(annotation)[:1]
        return vol.All(_exact_type(list), [value_validator(item)])
    if origin in (dict, Mapping):
        _key, value = get_args(annotation)
        return vol.All(_exact_type(dict), {str: value_validator(value)})
    if origin in (Union, types.UnionType):
        members = get_args(annotation)
        non_null = [m for m in members if m is not type(None)]
        if len(non_null) == 1:
            return _or_null(value_validator(non_null[0]))
        return vol.Any(*(value_validator(member) for member in members))
    raise TypeError(f"no validator for {annotation!r}")


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
_TYPE_NAMES[list] = "a list"
_TYPE_NAMES[dict] = "an object"


def _exact_type(expected: type) -> Callable[[Any], Any]:
    """JSON types without Python's coercions: True is not an integer, "1" is not a number."""

    def check(value: Any) -> Any:
        if expected is int and isinstance(value, float) and value.is_integer():
            return int(value)  # JSON has one number type: JSON Schema's integer includes 22.0
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        if not ok:
            raise vol.Invalid(f"expected {_TYPE_NAMES[expected]}")
        return value

    return check


def _constraint_validator(constraint: Any) -> Any:
    if isinstance(constraint, Range):
        return vol.Range(min=constraint.minimum, max=constraint.maximum)
    if isinstance(constraint, Length):
        return vol.Length(min=constraint.min_length, max=constraint.max_length)
    if isinstance(constraint, Pattern):
        compiled = re.compile(f"^(?:{constraint.regex})$")
        return vol.Match(compiled, msg=f"does not match {constraint.regex}")
    return None


def field_names(shape: Any) -> tuple[str, ...]:
    """The keys a TypedDict declares, in declaration order."""
    return tuple(get_type_hints(shape).keys())
