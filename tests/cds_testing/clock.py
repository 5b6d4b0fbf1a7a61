"""A clock the test sets by hand, for components built with `clock=` (a `Callable[[], float]`)."""
from __future__ import annotations

import time


class FakeClock:
    """Returns `t` (seconds since the epoch, as `time.time`); starts at the real time unless given one."""

    def __init__(self, t: float | None = None):
        self.t = time.time() if t is None else t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
