"""The values a config key takes, declared on the key's type: `iterations: PositiveInt = 2000`.

The config loader checks every value against its key's domain as it reads it, so a bad value is
refused in one line that names where it came from, the key, the value and what the key takes, before a
job writes anything. Keys whose allowed values live in a registry (algorithms, policies, datasets)
are checked by their section's `validate()` instead, in the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any


@dataclass(frozen=True)
class Range:
    """A number within [low, high]; `open_low` / `open_high` exclude the bound itself (a rate must be above 0,
    a dropout probability below 1)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def admits(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value < self.high or (value == self.high and not self.open_high)

    def describe(self, kind: str) -> str:
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.open_low else '>='} {_number(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.open_high else '<='} {_number(self.high)}")
        return f"{kind} {' and '.join(bounds)}" if bounds else f"a finite {kind}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of words."""

    choices: tuple[str, ...]

    def admits(self, value: Any) -> bool:
        return value in self.choices

    def describe(self, kind: str) -> str:
        return "one of " + ", ".join(self.choices)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def describe_choices(choices) -> str:
    """`one of a, b, c`: how a registry-checked key says what it takes."""
    return "one of " + ", ".join(sorted(choices))


PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
Seed = Annotated[int, Range(0, 2**32 - 1)]  # numpy's and torch's seeds are unsigned 32-bit
PositiveFloat = Annotated[float, Range(0, open_low=True)]
NonNegativeFloat = Annotated[float, Range(0)]
Fraction = Annotated[float, Range(0, 1)]  # a probability or a share, 0 and 1 included
Dropout = Annotated[float, Range(0, 1, open_high=True)]
