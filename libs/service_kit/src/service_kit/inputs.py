"""What a client may send: JSON that every part of the system can carry, and text
that PostgreSQL can store.

Python's ``json`` accepts ``NaN``, ``Infinity``, numbers that overflow to infinity and
escaped lone surrogates (``"\\ud800"``); none of them can be rendered back as JSON or
encoded as UTF-8, so before this they failed deep inside a request (500). PostgreSQL
refuses NUL (U+0000) in text, so a NUL reaching a write was a 500 too. Here they are
refused at the edge, naming the field, before anything is written.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

MAX_JSON_DEPTH = 32
# Python converts at most this many digits to an int (sys.get_int_max_str_digits()).
MAX_INT_DIGITS = 4300
MAX_REPORTED = 20  # problems named in one answer
MAX_ECHO = 64  # characters of the offending input echoed back

_SURROGATE = re.compile("[\ud800-\udfff]")
_BOM = "\ufeff"


def has_lone_surrogate(value: str) -> bool:
    return _SURROGATE.search(value) is not None


def printable(value: str) -> str:
    """``value`` as it can be shown in JSON: lone surrogates as ``\\udXXX`` escapes."""
    if has_lone_surrogate(value):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _storable(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError(
            "string_nul", "String should not contain NUL (U+0000): it cannot be stored"
        )
    if has_lone_surrogate(value):
        raise PydanticCustomError(
            "string_unicode", "String should not contain a lone surrogate (U+D800 to U+DFFF)"
        )
    return value


NO_NUL_PATTERN = r"^[^\x00]*$"


class _Storable:
    """Annotated metadata: after the string's own checks (so their error types stay
    ``string_too_short`` and the like), refuse NUL and lone surrogates with a message
    that says why; the JSON schema documents it as a pattern."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_storable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NO_NUL_PATTERN)
        return json_schema


Storable = _Storable()
"""Put last in a string field's ``Annotated[str, Field(...), Storable]``: text that can
be stored and sent on, without NUL or lone surrogates. For every free-text input."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a body is refused: the HTTP status and FastAPI's ``detail``."""

    status: int
    detail: Any


@dataclass(frozen=True, slots=True)
class _Unrepresentable:
    literal: str  # as sent: NaN, Infinity, 1e400, 999…9


def _constant(literal: str) -> _Unrepresentable:
    return _Unrepresentable(literal)


def _float(literal: str) -> float | _Unrepresentable:
    number = float(literal)  # 1e400 overflows to inf
    return number if math.isfinite(number) else _Unrepresentable(literal)


def _int(literal: str) -> int | _Unrepresentable:
    digits = len(literal.lstrip("-"))
    return int(literal) if digits <= MAX_INT_DIGITS else _Unrepresentable(literal)


def check_json_body(body: bytes) -> Refusal | None:
    """``None`` when FastAPI may parse ``body`` (including JSON with a syntax error,
    which FastAPI itself answers with its ``json_invalid`` 422); else the refusal:
    400 for a body that is not UTF-8 (RFC 8259 JSON is UTF-8 only), 422 naming each
    value JSON cannot carry (a lone surrogate, NaN, ±Infinity, a number out of range,
    nesting deeper than ``MAX_JSON_DEPTH``)."""
    try:
        text = body.decode("utf-8")  # strict: surrogates encoded in UTF-8 are invalid too
    except UnicodeDecodeError as exc:
        return Refusal(
            400,
            f"request body is not valid UTF-8: {exc.reason} at byte {exc.start}"
            f" (0x{body[exc.start]:02x})",
        )
    try:
        parsed = json.loads(
            text.removeprefix(_BOM),
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except json.JSONDecodeError:
        return None
    except RecursionError:
        return Refusal(422, [_json_invalid((), f"JSON nested deeper than {MAX_JSON_DEPTH} levels")])
    problems = _problems(parsed)
    return Refusal(422, problems) if problems else None


def _problems(document: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack and len(found) < MAX_REPORTED:
        value, path = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            found.append(_json_invalid(path, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"))
        elif isinstance(value, str):
            if has_lone_surrogate(value):
                found.append(_surrogate(path, value))
        elif isinstance(value, _Unrepresentable):
            found.append(_unrepresentable(path, value.literal))
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if has_lone_surrogate(key):
                    found.append(_surrogate((*path, printable(key)), key, what="Object key"))
                else:
                    stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in reversed(list(enumerate(value))))
    return found


def _loc(path: tuple[str | int, ...]) -> list[str | int]:
    return ["body", *path]


def _echo(text: str) -> str:
    shown = printable(text)
    return shown if len(shown) <= MAX_ECHO else f"{shown[:MAX_ECHO]}… ({len(text)} characters)"


def _surrogate(path: tuple[str | int, ...], value: str, *, what: str = "String") -> dict[str, Any]:
    return {
        "type": "string_unicode",
        "loc": _loc(path),
        "msg": f"{what} should not contain a lone surrogate (U+D800 to U+DFFF): "
        "it is not Unicode text and cannot be encoded as UTF-8",
        "input": _echo(value),
    }


def _unrepresentable(path: tuple[str | int, ...], literal: str) -> dict[str, Any]:
    if literal.lstrip("-").isdigit():
        return {
            "type": "int_parsing_size",
            "loc": _loc(path),
            "msg": f"Integer should have at most {MAX_INT_DIGITS} digits",
            "input": _echo(literal),
        }
    why = (
        "JSON has no NaN or Infinity"
        if literal in ("NaN", "Infinity", "-Infinity")
        else ("the number is out of range")
    )
    return {
        "type": "finite_number",
        "loc": _loc(path),
        "msg": f"Input should be a finite number: {why}",
        "input": _echo(literal),
    }


def _json_invalid(path: tuple[str | int, ...], error: str) -> dict[str, Any]:
    # FastAPI's own shape for a body it cannot parse.
    return {
        "type": "json_invalid",
        "loc": _loc(path),
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": error},
    }
