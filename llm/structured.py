"""JSON-Schema-constrained answers: native structured mode first, then validate and repair.

The request asks the provider's native mode (response_format json_schema, strict; each dialect
translates it). The answer is parsed (code fences stripped) and validated with Draft 2020-12.
On failure the invalid answer and the validation errors go back to the model as a follow-up turn,
at most max_repairs times. Every attempt is a real upstream call, so its Charge is kept on the
result (or on the error, StructuredOutputError or whatever stopped a repair): the caller pays for
all of them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from llm.charges import Charge
from llm.errors import GatewayError, InvalidSchemaError, StructuredOutputError
from llm.failover import complete
from llm.retry_policy import DEFAULT_POLICY, RetryPolicy
from llm.route_info import RouteInfo
from llm.routing import RoutePlan
from llm.runtime import Runtime, get_runtime
from llm.types import ChatRequest, ChatResult

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_NAME = re.compile(r"[^A-Za-z0-9_-]")
MAX_ERRORS_SHOWN = 10


@dataclass
class StructuredResult:
    value: Any  # the parsed, valid JSON
    result: ChatResult  # the last (valid) answer
    route: RouteInfo  # of the last attempt
    attempts: int
    charges: tuple[Charge, ...]  # one per paid attempt


def check_schema(schema: Any) -> Draft202012Validator:
    """A validator for schema, or InvalidSchemaError (a 400: the caller's schema is broken)."""
    if not isinstance(schema, dict):
        raise InvalidSchemaError("the JSON schema must be an object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "<root>"
        raise InvalidSchemaError(f"invalid JSON schema at {where}: {exc.message}") from None
    except RecursionError:
        raise InvalidSchemaError("the JSON schema is nested too deeply") from None
    check_references(schema)
    return Draft202012Validator(schema)


# Keywords whose subschemas apply to the same instance: a $ref cycle through only these never
# descends into the instance, so validating anything against it recurses forever.
IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
IN_PLACE_ONES = ("not", "if", "then", "else")


def check_references(schema: dict[str, Any]) -> None:
    """Only local $ref ('#' or '#/json/pointer'), each resolvable, and no cycle of references
    that never descends into the instance (`{"$ref": "#"}`); recursion through `properties` or
    `items`, as in a tree, is fine."""
    nodes = list(_subschemas(schema))
    for node in nodes:
        for word in ("$dynamicRef", "$recursiveRef"):
            if word in node:
                raise InvalidSchemaError(f"{word} is not supported; use a local $ref")
        if "$ref" in node:
            _resolve(schema, node["$ref"])
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in nodes:
        stack = [(start, iter(_in_place(schema, start)))]
        if state.get(id(start)):
            continue
        state[id(start)] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[id(node)] = 2
                stack.pop()
            elif state.get(id(child)) == 1:
                raise InvalidSchemaError("the JSON schema's $ref form a cycle that never ends")
            elif not state.get(id(child)):
                state[id(child)] = 1
                stack.append((child, iter(_in_place(schema, child))))


def _subschemas(value: Any):
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _in_place(root: dict[str, Any], node: dict[str, Any]):
    if isinstance(node.get("$ref"), str):
        yield _resolve(root, node["$ref"])
    for word in IN_PLACE_LISTS:
        if isinstance(node.get(word), list):
            yield from (s for s in node[word] if isinstance(s, dict))
    for word in IN_PLACE_ONES:
        if isinstance(node.get(word), dict):
            yield node[word]


def _resolve(root: dict[str, Any], ref: Any) -> Any:
    if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
        raise InvalidSchemaError(f"only local $ref ('#/...') are allowed, not {str(ref)[:100]!r}")
    target: Any = root
    for part in ref[2:].split("/") if ref != "#" else []:
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise InvalidSchemaError(f"$ref {ref[:100]!r} points at nothing")
    if not isinstance(target, dict):
        raise InvalidSchemaError(f"$ref {ref[:100]!r} does not point at a schema")
    return target


def parse_json_answer(text: str) -> Any:
    """The JSON in a model's answer, tolerating a surrounding ``` fence; ValueError if none."""
    match = _FENCE.match(text)
    return json.loads(match.group(1) if match else text)


def validation_errors(validator: Draft202012Validator, value: Any) -> list[str]:
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def response_format_for(schema: dict[str, Any], name: str = "response") -> dict[str, Any]:
    safe = _NAME.sub("_", name)[:64] or "response"
    return {"type": "json_schema", "json_schema": {"name": safe, "schema": schema, "strict": True}}


async def complete_structured(
    plan: RoutePlan,
    request: ChatRequest,
    schema: dict[str, Any],
    *,
    deadline: float,
    name: str = "response",
    max_repairs: int = 2,
    runtime: Runtime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    paid: list[Charge] | None = None,
) -> StructuredResult:
    """Ask for JSON matching schema; repair up to max_repairs times; deadline covers them all.
    Each paid answer is also appended to paid as it arrives, so a caller that is cancelled
    half-way still knows what was spent."""
    validator = check_schema(schema)
    rt = runtime or get_runtime()
    ends_at = rt.monotonic() + deadline
    messages = list(request.messages)
    results: list[ChatResult] = []
    charges: list[Charge] = [] if paid is None else paid
    errors: list[str] = []
    route: RouteInfo | None = None
    for attempt in range(1, max_repairs + 2):
        attempt_request = dataclasses.replace(
            request, messages=messages, response_format=response_format_for(schema, name)
        )
        remaining = max(ends_at - rt.monotonic(), 0.001)
        try:
            result, route = await complete(
                plan, attempt_request, deadline=remaining, runtime=rt, policy=policy
            )
        except GatewayError as error:
            error.charges = (*charges, *error.charges)  # the answers before it were paid for
            raise
        results.append(result)
        charges.append(route.charge)
        try:
            value = parse_json_answer(result.text)
            errors = validation_errors(validator, value)
        except ValueError as exc:
            errors = [f"<root>: not valid JSON ({exc})"]
        except RecursionError:
            errors = ["<root>: the answer is nested too deeply to validate"]
        if not errors:
            return StructuredResult(
                value=value, result=result, route=route, attempts=attempt, charges=tuple(charges)
            )
        messages = [
            *messages,
            {"role": "assistant", "content": result.text},
            {"role": "user", "content": _repair_prompt(errors)},
        ]
    raise StructuredOutputError(
        f"no answer matched the schema after {len(results)} attempt(s)",
        errors=errors,
        last_text=results[-1].text,
        charges=tuple(charges),
        attempts=len(results),
        route=route,
    )


def _repair_prompt(errors: list[str]) -> str:
    shown = "\n".join(f"- {e}" for e in errors[:MAX_ERRORS_SHOWN])
    more = len(errors) - MAX_ERRORS_SHOWN
    tail = f"\n- ... and {more} more" if more > 0 else ""
    return (
        "Your previous answer does not match the required JSON schema:\n"
        f"{shown}{tail}\n"
        "Reply again with only the corrected JSON value, no prose and no code fences."
    )
