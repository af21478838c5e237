"""Search spaces in YAML: what one hyper-parameter of a search may take.

A list is a set of choices (categorical; the only kind grid and random search take). A
mapping ``{low, high}`` is a range for Optuna: an integer range when both bounds are
integers, else a float range, with ``log: true`` for a log scale and ``step`` for a grid
inside the range. Each value is checked where it is written, so an error names its key
(``model.tune.params.C``); docs/training.md has the whole syntax, ADR 0039 the reasons.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from conveyor.spec.explain import unknown_key_message

__all__ = ["ParamRange", "SpaceValue", "parse_timeout"]


class ParamRange(BaseModel):
    """A range ``{low, high}`` (``log``, ``step`` optional) of one hyper-parameter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("low", "high", "step"):
                if isinstance(data.get(key), bool):
                    raise ValueError(f"{key} must be a number, got {data[key]!r}")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ParamRange:
        for key in ("low", "high", "step"):
            value = getattr(self, key)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, got {value}")
        if self.low > self.high:
            raise ValueError(f"low {self.low:g} is above high {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0 (a log scale starts above zero), "
                             f"got low {self.low:g}")
        if self.step is not None:
            if self.log:
                raise ValueError("step and log: true cannot be combined (Optuna samples a "
                                 "log range continuously)")
            if self.step <= 0:
                raise ValueError(f"step must be above 0, got {self.step:g}")
            if self.kind == "int" and not isinstance(self.step, int):
                raise ValueError(f"an integer range needs an integer step, got {self.step:g} "
                                 "(write low or high as a float for a float range)")
        return self

    @property
    def kind(self) -> str:
        """``int`` when both bounds are integers, else ``float``."""
        return "int" if isinstance(self.low, int) and isinstance(self.high, int) else "float"


def _space_value(value: Any) -> Any:
    if isinstance(value, list):
        if not value:
            raise ValueError("an empty list of choices; give at least one value")
        return value
    if isinstance(value, dict):
        try:
            return ParamRange.model_validate(value)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            # a typo of a bound shows up as "missing" *and* "extra": the typo explains both
            error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            where = ".".join(str(p) for p in error["loc"])
            text = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                text = unknown_key_message(where, ["high", "log", "low", "step"]) + " (in a range)"
            elif error["type"] == "missing":
                text = f"a range needs {where} (write {{low: 1, high: 10}})"
            elif where:
                text = f"{where}: {text}"
            raise ValueError(text) from None
    raise ValueError(f"expected a list of choices like [1, 3, 10] or a range like "
                     f"{{low: 0.01, high: 10, log: true}}, got {value!r}")


#: One hyper-parameter's space: a non-empty list of choices or a :class:`ParamRange`.
SpaceValue = Annotated[list[Any] | ParamRange, BeforeValidator(_space_value)]

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|h)?\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_timeout(value: Any) -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"2m"`` or ``"1.5h"`` (``None`` stays ``None``).

    >>> parse_timeout("2m"), parse_timeout(30), parse_timeout("1.5h")
    (120.0, 30.0, 5400.0)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected seconds or a duration like '2m', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected seconds or a duration like '90s', '2m', '1h', "
                             f"got {value!r}")
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a time budget must be above 0 seconds, got {value!r}")
    return seconds
