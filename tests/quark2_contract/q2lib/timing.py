"""QUARK 2 measures phases in milliseconds, rounded to three places."""

import time


def start_time_measurement() -> float:
    return time.perf_counter()


def end_time_measurement(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
