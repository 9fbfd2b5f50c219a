"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) on the standard library.

The audit chain hashes each event as canonical JSON. The domain imports nothing outside the
standard library (Temporal's sandbox re-imports it, and the rule keeps it small), so the scheme is
written out here; tests/engine/test_canonical.py holds it byte-equal to the `rfc8785` package on
generated values.

Why not `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` alone: it differs
from RFC 8785 in two places events can reach. (1) Numbers: gate `inputs` carry observed metric
values and thresholds, which may be floats, and RFC 8785 writes them as ECMAScript does (`1.0`
is `1`, `1e16` is `10000000000000000`, `1e-7` is `1e-7`), not as Python's repr. (2) Key order:
RFC 8785 sorts keys by their UTF-16 code units, Python by code points; the two differ when a key
holds a character above U+FFFF and another one in U+E000..U+FFFF (target names are keys of a
rollback's `to`). Strings themselves are escaped exactly as `json.dumps(..., ensure_ascii=False)`
escapes them (`\\"`, `\\\\`, `\\b \\f \\n \\r \\t`, other controls as lower-case `\\u00xx`), which is
RFC 8785's rule, so that part reuses it.

Values outside what JSON can carry exactly are refused with CanonicalError: integers beyond
+-(2**53 - 1), NaN and infinities, strings that are not valid Unicode (lone surrogates), keys that
are not strings, and any other type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TypeAlias

JSONValue: TypeAlias = "None | bool | int | float | str | list[JSONValue] | tuple[JSONValue, ...] | Mapping[str, JSONValue]"
"""A JSON value as Python holds it (tuples are written as arrays)."""

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalError(ValueError):
    """A value that has no RFC 8785 form."""


def canonical_json(value: object) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of `value`."""
    parts: list[str] = []
    _write(value, parts)
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalError("a string holds a lone surrogate: not valid Unicode") from None


def _write(value: object, parts: list[str]) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalError(f"integer {value} is beyond what a JSON number holds exactly (2**53 - 1)")
        parts.append(str(int(value)))
    elif isinstance(value, float):
        parts.append(format_number(value))
    elif isinstance(value, str):
        parts.append(json.dumps(str(value), ensure_ascii=False))
    elif isinstance(value, list | tuple):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalError(f"object key {key!r} is not a string")
        parts.append("{")
        for index, key in enumerate(sorted(value, key=_utf16_key)):
            if index:
                parts.append(",")
            parts.append(json.dumps(str(key), ensure_ascii=False))
            parts.append(":")
            _write(value[key], parts)
        parts.append("}")
    else:
        raise CanonicalError(f"{type(value).__name__} is not a JSON value")


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare as the sequence of UTF-16 code units does.
    try:
        return key.encode("utf-16-be")
    except UnicodeEncodeError:
        raise CanonicalError("an object key holds a lone surrogate: not valid Unicode") from None


def format_number(number: float) -> str:
    """A finite float as ECMAScript's Number.prototype.toString writes it (RFC 8785 section 3.2.2.3).

    Python's repr gives the shortest digits that read back to the same double, which is the
    digit string ECMAScript asks for; only the layout (where the point and exponent go) differs.
    """
    if math.isnan(number) or math.isinf(number):
        raise CanonicalError(f"{number} has no JSON form")
    if number == 0:
        return "0"  # -0 too
    if number < 0:
        return "-" + format_number(-number)
    mantissa, _, exponent_text = repr(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    # number = 0.DIGITS * 10**point
    point = len(whole) + (int(exponent_text) if exponent_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        return digits + "0" * (point - count)
    if 0 < point <= 21:
        return digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    exponent = point - 1
    sign = "+" if exponent >= 0 else "-"
    head = digits[0] if count == 1 else digits[0] + "." + digits[1:]
    return f"{head}e{sign}{abs(exponent)}"
