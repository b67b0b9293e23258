"""Params keys are declared once, as fields of the config dataclasses; the JSON schema is generated
from them (`python -m resetrl.core.config schema`), and a test fails when the committed file differs.

A field declares its type (the annotation), its default and its JSON-schema bounds (`param`), and
its description (the ``#:`` comment block above it, the Sphinx convention); a section's description
is its class docstring. Enumerations are ``Literal`` aliases, which the code uses too."""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import textwrap
import types
import typing
from typing import Any, Literal

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def param(default: Any, **schema: Any) -> Any:
    """A params key with its default and JSON-schema keywords (``minimum=1``, ``pattern=...``;
    ``items=`` / ``values=`` constrain the elements of a list / map; ``json=`` replaces the
    derived type schema where an annotation cannot say it)."""
    metadata = {"default": default, "schema": schema}
    if isinstance(default, dict | list):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def section(cls: type) -> Any:
    """A nested section: its defaults are its fields' defaults."""
    return dataclasses.field(default_factory=cls)


def choices(alias: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` enumeration."""
    return typing.get_args(alias)


def field_docs(cls: type) -> dict[str, str]:
    """The ``#:`` comment block above each field of a dataclass, joined into one line."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    docs = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            block, row = [], node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#:"):
                block.insert(0, lines[row].strip()[2:].strip())
                row -= 1
            docs[node.target.id] = " ".join(block)
    return docs


def _type_schema(hint: Any, items: dict | None = None, values: dict | None = None) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        schema = _type_schema(inner, items, values)
        return {**schema, "type": [schema["type"], "null"]}
    if origin is tuple:
        element = items or {}
        return {"type": "array", "items": element if "$ref" in element else {**_type_schema(args[0]), **element}}
    if origin is dict:
        return {"type": "object", "additionalProperties": {**_type_schema(args[1]), **(values or {})}}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    raise TypeError(f"no JSON schema for the annotation {hint!r}: give param(..., json=...)")


def _field_schema(hint: Any, field: dataclasses.Field, doc: str) -> dict[str, Any]:
    extra = dict(field.metadata["schema"])
    derived = extra.pop("json", None) or _type_schema(hint, extra.pop("items", None), extra.pop("values", None))
    return {"description": doc, **derived, **extra, "default": _json_value(field.metadata["default"])}


def _json_value(value: Any) -> Any:
    """A default as JSON holds it: tuples become lists."""
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value


def section_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of a config dataclass; shapes referenced by name (`$defs`) are added to `defs`."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    properties = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            properties[field.name] = section_schema(hint, defs)
            continue
        if typing.get_origin(hint) is dict and dataclasses.is_dataclass(typing.get_args(hint)[1]):
            entry = typing.get_args(hint)[1]
            defs[entry.DEF_NAME] = section_schema(entry, defs)
        if not docs.get(field.name):
            raise TypeError(f"{cls.__name__}.{field.name}: no `#:` comment above it (its description)")
        properties[field.name] = _field_schema(hint, field, docs[field.name])
    return {"description": " ".join(cls.__doc__.split()), "type": "object", "additionalProperties": False,
            "required": list(properties), "properties": properties}


def json_schema(root: type, title: str, defs: dict[str, Any]) -> dict[str, Any]:
    """The whole params schema: `root`'s sections, with `defs` (named shapes) first."""
    body = section_schema(root, defs)
    return {"$schema": SCHEMA_DRAFT, "title": title, "description": body.pop("description"), **body,
            "$defs": defs}
