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

import copy
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

    def __init__(self, path: str, value: Any, why: str | None = None) -> None:
        self.path = path
        self.type_name = type(value).__name__
        super().__init__(f"{path} is {why or self.type_name}, which JSON cannot hold")


#: Deepest nesting of a value written to a record; deeper is refused (it is most likely a cycle).
MAX_DEPTH = 64
#: Largest integer written as a number; JSON allows more, but Python will not print one of 4,300 digits.
MAX_INT_DIGITS = 4000
#: Integers below this in size need no check of their digits.
SMALL_INT = 1 << 64
#: The smallest integer (in size) of more than ``MAX_INT_DIGITS`` digits.
_TOO_MANY_DIGITS = 10**MAX_INT_DIGITS


def plain(value: Any, path: str, nonfinite: dict[str, str], depth: int = 0) -> Any:
    """``value`` as strict JSON (see the module's rules); non-finite numbers are noted in ``nonfinite``.

    Raises ``NotJSON`` for the first part that has no faithful JSON form, and for values nested deeper
    than ``MAX_DEPTH`` (which is what a value that contains itself looks like).
    """
    if depth > MAX_DEPTH:
        raise NotJSON(path, value, f"nested deeper than {MAX_DEPTH} levels (does it contain itself?)")
    kind = type(value)
    if kind is str:  # the common cases first, by exact type: a record holds thousands of values
        return _text(value)
    if kind is float:
        return value if math.isfinite(value) else _number(value, path, nonfinite)
    if value is None or kind is bool:
        return value
    if kind is int and -SMALL_INT < value < SMALL_INT:
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        if abs(value) >= _TOO_MANY_DIGITS:
            raise NotJSON(path, value, f"an integer of more than {MAX_INT_DIGITS} digits")
        return int(value)
    if isinstance(value, float):
        return _number(float(value), path, nonfinite)
    if isinstance(value, dict):
        converted: dict[str, Any] = {}
        for key, item in value.items():
            text = plain_key(key, path)
            if text in converted:
                raise NotJSON(path, value, f"two of its keys are both written {text!r}")
            converted[text] = plain(item, f"{path}.{text}", nonfinite, depth + 1)
        return converted
    if isinstance(value, list | tuple):
        return [plain(item, f"{path}[{i}]", nonfinite, depth + 1) for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [plain(item, f"{path}[{i}]", nonfinite, depth + 1) for i, item in enumerate(value)]
        return sorted(items, key=lambda item: (type(item).__name__, repr(item)))
    if isinstance(value, enum.Enum):
        return plain(value.value, path, nonfinite, depth + 1)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return _text(str(value))
    if isinstance(value, numbers.Integral):  # numpy integers
        return plain(int(value), path, nonfinite, depth)
    if isinstance(value, numbers.Real):  # numpy floats, fractions
        return _number(float(value), path, nonfinite)
    if callable(getattr(type(value), "tolist", None)) and not isinstance(value, numbers.Complex):  # numpy arrays
        return plain(value.tolist(), path, nonfinite, depth + 1)
    raise NotJSON(path, value)


_ATOMS = (str, int, float, bool, type(None))


def copy_tree(value: Any, depth: int = 0) -> Any:
    """A deep copy of ``value``: dicts, lists and tuples of text, numbers, booleans and None copied
    by hand (several times faster than ``copy.deepcopy``), anything else, and anything nested deeper
    than ``MAX_DEPTH`` (a cycle, say), by ``copy.deepcopy``."""
    if isinstance(value, _ATOMS):
        return value
    if depth <= MAX_DEPTH:
        kind = type(value)
        if kind is dict:
            return {key: copy_tree(item, depth + 1) for key, item in value.items()}
        if kind is list:
            return [copy_tree(item, depth + 1) for item in value]
        if kind is tuple:
            return tuple(copy_tree(item, depth + 1) for item in value)
    return copy.deepcopy(value)


def plain_key(key: Any, path: str) -> str:
    """A dict key (or a metric's name) as JSON text: strings as they are, numbers, None, tuples and
    Enum members as their text; anything else is ``NotJSON``."""
    if isinstance(key, str):
        return _text(key)
    if key is None or isinstance(key, bool | int | float | tuple | enum.Enum):
        return _text(str(key))
    raise NotJSON(f"{path} key {key!r}", key)


def _text(value: str) -> str:
    """Text that UTF-8 can hold: a lone surrogate (from a bad decode) is written as its escape."""
    if value.isascii():  # most text: no encoding to try
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _number(value: float, path: str, nonfinite: dict[str, str]) -> float | None:
    if math.isfinite(value):
        return value
    nonfinite[path] = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return None


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: the last guard of a writer of strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    if callable(getattr(type(value), "tolist", None)) and not isinstance(value, numbers.Complex):  # numpy
        return finite(value.tolist())
    return value
