"""Module output as strict JSON: what a record can hold, and what it cannot.

Modules report metrics of any Python type; a record is strict JSON (no NaN or Infinity tokens, which
strict readers refuse). ``plain`` converts every value that has a faithful JSON form and names the
first that has none:

* numpy numbers and arrays become numbers and lists; tuples become lists;
* a set becomes a sorted list;
* a dict key that is not a string becomes its text (``1`` -> ``"1"``, ``(0, 1)`` -> ``"(0, 1)"``);
* dates and times become ISO 8601 text, paths their text, an Enum member its value;
* NaN, Infinity and -Infinity become ``null``, their text kept in a ``nonfinite_values`` map beside
  them (``{"energy": "NaN", "trace[3]": "Infinity"}``);
* anything else (bytes, complex numbers, objects) has no faithful form: ``NotJSON`` names its path.
"""

from __future__ import annotations

import datetime
import enum
import math
import numbers
from pathlib import PurePath
from typing import Any

#: The key, on a record level, of the map from each non-finite value's path to its original text.
NONFINITE_KEY = "nonfinite_values"


class NotJSON(ValueError):
    """A value with no faithful JSON form; ``path`` says where (``energy``, ``counts[2]``, ``info.raw``)."""

    def __init__(self, path: str, value: Any) -> None:
        self.path = path
        self.type_name = type(value).__name__
        super().__init__(f"{path} is {self.type_name}, which JSON cannot hold")


def plain(value: Any, path: str, nonfinite: dict[str, str]) -> Any:
    """``value`` as strict JSON (see the module's rules); non-finite numbers are noted in ``nonfinite``.

    Raises ``NotJSON`` for the first part that has no faithful JSON form.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _number(float(value), path, nonfinite)
    if isinstance(value, dict):
        return {_key(key, path): plain(item, f"{path}.{_key(key, path)}", nonfinite) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item, f"{path}[{i}]", nonfinite) for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [plain(item, f"{path}[{i}]", nonfinite) for i, item in enumerate(value)]
        return sorted(items, key=lambda item: (type(item).__name__, repr(item)))
    if isinstance(value, enum.Enum):
        return plain(value.value, path, nonfinite)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, numbers.Integral):  # numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # numpy floats, fractions
        return _number(float(value), path, nonfinite)
    if hasattr(value, "tolist") and not isinstance(value, numbers.Complex):  # numpy arrays and booleans
        return plain(value.tolist(), path, nonfinite)
    raise NotJSON(path, value)


def _number(value: float, path: str, nonfinite: dict[str, str]) -> float | None:
    if math.isfinite(value):
        return value
    nonfinite[path] = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return None


def _key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float | tuple | enum.Enum):
        return str(key)
    raise NotJSON(f"{path} key {key!r}", key)


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: the last guard of a writer of strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, numbers.Complex):  # numpy
        return finite(value.tolist())
    return value
