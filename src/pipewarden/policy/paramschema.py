"""The JSON Schema validator of rule params (`custom.params_schema` in a rule's METADATA).

Draft 7, with one change: `multipleOf` is decided on the decimal value, exactly, as the schema
means it. The stock validator divides doubles, so `0.29` is not a multiple of `0.01` to it
(0.29 / 0.01 = 28.999999999999996). The built-in rules cap the precision of their number params
with `multipleOf` (min-healthy-hosts' `min_percent`: 0.01) so that the embedded engine (doubles)
and OPA (exact decimals) compute the same findings from them (docs/opa.md); the cap must then
accept every value it allows. A value is taken as the decimal its shortest text spells (Python's
`repr`, what `json.dumps` writes and what each engine is given), not the binary double.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        found = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def _multiple_of(validator: Any, divisor: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    from jsonschema import ValidationError

    value, step = _decimal(instance), _decimal(divisor)
    if value is None or step is None or step <= 0:
        return  # not a number (another keyword says so), or a schema error the meta-schema reports
    if value % step != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor!r} (at most {_places(step)} decimal(s))"
                              if step < 1 else f"{instance!r} is not a multiple of {divisor!r}")


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def params_validator(schema: dict[str, Any]) -> Any:
    """A Draft 7 validator of `schema` whose `multipleOf` is exact (see the module's text)."""
    from jsonschema import Draft7Validator, validators

    exact = validators.extend(Draft7Validator, {"multipleOf": _multiple_of})  # type: ignore[no-untyped-call]
    return exact(schema)
