"""Solver engines behind one interface: ``solve(problem, built, *, time_limit_s, warm_start,
on_progress) -> EngineResult`` with stop sequences per vehicle and the stops left out.

Engines return sequences only; ``schedule`` times them and ``feasibility`` checks
them, the same way for every engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    engine: str
    elapsed_s: float
    best_cost: int | None
    time_left_s: float
    unassigned: int | None = None  # known for the inserted plan only


@dataclass(frozen=True)
class EngineResult:
    sequences: dict[str, list[str]]
    dropped: list[str]
    engine: str
    first_plan_s: float | None
    notes: tuple[str, ...] = field(default_factory=tuple)
