"""QUARK 2 keeps its ``Instruction`` in the benchmark manager's module; values are ints, not ours."""

from enum import Enum


class Instruction(Enum):
    PROCEED = 0
    INTERRUPT = 1
