"""Request-body validation against Discord's official OpenAPI 3.1 spec (discord.md §5.5).

The spec is loaded and indexed once per process per file (it is 1.2 MB); a Draft 2020-12 validator is compiled
lazily per operation and cached. Two adjustments keep real discord.py traffic valid:
- ``SnowflakeType`` is widened to string|integer (discord.py sends attachment placeholders as ints);
- multipart bodies are validated through their unpacked ``payload_json`` against the ``application/json`` schema.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from tests.fakes.discord.limits import Problem

SNOWFLAKE_WIDENED: dict[str, Any] = {"type": ["string", "integer"], "pattern": "^(0|[1-9][0-9]*)$"}
_HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


@dataclass(frozen=True)
class Operation:
    """One spec operation: ``method`` + path template, with its JSON request schema (None = no body)."""

    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    body_schema: Mapping[str, Any] | None
    body_required: bool
    responses: Mapping[str, Any]


@dataclass
class SpecIndex:
    """Operations of one spec file, looked up by HTTP method and concrete path (without ``/api/v10``)."""

    components: dict[str, Any]
    operations: dict[str, list[Operation]]
    _validators: dict[tuple[str, str], Draft202012Validator] = field(default_factory=dict)

    def match(self, method: str, path: str) -> Operation | None:
        for operation in self.operations.get(method.upper(), []):
            if operation.pattern.fullmatch(path):
                return operation
        return None

    def validate_request(self, method: str, path: str, body: Any, *, has_files: bool = False) -> list[Problem]:
        """Problems of ``body`` (JSON or unpacked payload_json) for the operation serving ``method path``."""
        operation = self.match(method, path)
        if operation is None:
            return []
        if body is None:
            if operation.body_required and not has_files:
                return [Problem("", f"{operation.operation_id} requires a request body", source="spec")]
            return []
        if operation.body_schema is None:
            return [Problem("", f"{operation.operation_id} takes no request body", source="spec")]
        validator = self._validator(operation, "request", operation.body_schema)
        return [problem for error in validator.iter_errors(body) for problem in _problems(error)]

    def validate_response(self, method: str, path: str, status: int, body: Any) -> list[Problem]:
        """Problems of a response body against the operation's schema for ``status`` (used to keep the fake honest)."""
        operation = self.match(method, path)
        response = operation.responses.get(str(status)) if operation else None
        schema = (((response or {}).get("content") or {}).get("application/json") or {}).get("schema")
        if operation is None or schema is None:
            return []
        validator = self._validator(operation, f"response-{status}", schema)
        return [problem for error in validator.iter_errors(body) for problem in _problems(error)]

    def _validator(self, operation: Operation, kind: str, schema: Mapping[str, Any]) -> Draft202012Validator:
        key = (operation.operation_id, kind)
        validator = self._validators.get(key)
        if validator is None:
            validator = Draft202012Validator({**schema, "components": self.components})
            self._validators[key] = validator
        return validator


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = (r"[^/]+" if part.startswith("{") else re.escape(part) for part in template.split("/"))
    return re.compile("/".join(parts))


def _json_schema(body: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    content = (body or {}).get("content") or {}
    media = content.get("application/json") or {}
    return media.get("schema")


def build_index(spec: Mapping[str, Any]) -> SpecIndex:
    """Index ``spec``'s operations; literal path segments win over ``{param}`` ones (``@original`` vs ``{id}``)."""
    schemas = {**spec["components"]["schemas"], "SnowflakeType": SNOWFLAKE_WIDENED}
    components = {**spec["components"], "schemas": schemas}
    operations: dict[str, list[Operation]] = defaultdict(list)
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method not in _HTTP_METHODS:
                continue
            request_body = op.get("requestBody")
            operations[method.upper()].append(
                Operation(
                    operation_id=op.get("operationId", f"{method} {template}"),
                    method=method.upper(),
                    template=template,
                    pattern=_template_pattern(template),
                    body_schema=_json_schema(request_body),
                    body_required=bool((request_body or {}).get("required")),
                    responses=op.get("responses") or {},
                )
            )
    for entries in operations.values():
        entries.sort(key=lambda o: (o.template.count("{"), -len(o.template)))
    return SpecIndex(components=components, operations=dict(operations))


@cache
def load_spec(path: Path) -> SpecIndex:
    """Load and index the spec at ``path`` once per process."""
    return build_index(json.loads(path.read_text(encoding="utf-8")))


# ------------------------------------------------------------------------------------------- error messages
def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _where(error: ValidationError) -> str:
    return error.json_path.removeprefix("$").removeprefix(".")


def _problems(error: ValidationError) -> list[Problem]:
    """One problem per leaf error; anyOf/oneOf errors are replaced by the errors of their most plausible branch."""
    branch = _best_branch(error)
    if branch:
        return [problem for sub in branch for problem in _problems(sub)]
    return [Problem(_where(error), _message(error), source="spec")]


def _is_discriminator_miss(error: ValidationError, parent: ValidationError) -> bool:
    """An error saying the branch is for another ``type`` value (or another JSON type) rules the branch out."""
    if error.validator in ("enum", "const") and list(error.relative_path) == ["type"]:
        return True
    return error.validator == "type" and error.absolute_path == parent.absolute_path


def _best_branch(error: ValidationError) -> list[ValidationError] | None:
    """For anyOf/oneOf: the errors of the alternative the body most plausibly meant."""
    if error.validator not in ("anyOf", "oneOf") or not error.context or _allowed_values(error):
        return None
    branches: dict[int, list[ValidationError]] = defaultdict(list)
    for sub in error.context:
        branches[int(sub.relative_schema_path[0])].append(sub)
    plausible = [errs for errs in branches.values() if not any(_is_discriminator_miss(e, error) for e in errs)]
    if not plausible:
        return None
    return min(plausible, key=len)


def _allowed_values(error: ValidationError) -> list[Any]:
    """The values an anyOf of consts/enums (e.g. allowed_mentions.parse items) accepts, else []."""
    subs = error.context or []
    if not subs or any(sub.validator not in ("const", "enum") or sub.relative_path for sub in subs):
        return []
    values: list[Any] = []
    for sub in subs:
        values += sub.validator_value if sub.validator == "enum" else [sub.validator_value]
    return values


def _message(error: ValidationError) -> str:
    value, instance = error.validator_value, error.instance
    match error.validator:
        case "maxLength" | "minLength":
            return f"length {len(instance)} violates {error.validator} {value}"
        case "maxItems" | "minItems":
            return f"{len(instance)} items violate {error.validator} {value}"
        case "maximum" | "minimum" | "exclusiveMaximum" | "exclusiveMinimum":
            return f"{_short(instance)} violates {error.validator} {value}"
        case "type":
            return f"{_short(instance)} is not of type {value}"
        case "enum":
            return f"{_short(instance)} is not one of {_short(value, 120)}"
        case "pattern":
            return f"{_short(instance)} does not match {value}"
        case "anyOf" | "oneOf" if _allowed_values(error):
            return f"{_short(instance)} is not one of {_short(_allowed_values(error), 120)}"
        case "const":
            return f"{_short(instance)} is not {_short(value)}"
        case "anyOf" | "oneOf":
            return f"{_short(instance)} matches none of the {len(value)} allowed shapes"
    return error.message[:200]
