"""Solve parameters: a validated, frozen dataclass."""

from __future__ import annotations

import os
from dataclasses import dataclass

FIRST_SOLUTIONS = (
    "auto",
    "path_cheapest_arc",
    "local_cheapest_insertion",
    "parallel_cheapest_insertion",
    "savings",
    "christofides",
)
METAHEURISTICS = ("guided_local_search", "tabu_search", "simulated_annealing", "greedy_descent")


@dataclass(frozen=True)
class SolveParams:
    """How long and how to search.

    Stop at ``time_limit`` seconds (wall clock) or, for deterministic runs, after
    ``solution_limit`` solutions found by the local search; at least one must be given.
    ``workers`` > 1 runs differently configured searches in parallel processes and keeps the
    best; ``use_pyvrp`` and ``use_vroom`` let PyVRP or VROOM build the starting routes that
    OR-Tools then completes (VROOM gets at most ``vroom_share`` of the time; it usually ends
    sooner by itself).
    """

    time_limit: float | None = 10.0
    solution_limit: int | None = None
    seed: int = 0
    workers: int = 1
    first_solution: str = "auto"
    metaheuristic: str = "guided_local_search"
    gls_lambda: float = 1.0
    use_pyvrp: bool = True
    pyvrp_share: float = 0.9
    use_vroom: bool = True
    vroom_share: float = 0.25
    log_search: bool = False

    def __post_init__(self) -> None:
        if self.time_limit is None and self.solution_limit is None:
            raise ValueError("SolveParams: give 'time_limit' or 'solution_limit'.")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ValueError("SolveParams: field 'time_limit' must be positive.")
        if self.solution_limit is not None and self.solution_limit < 1:
            raise ValueError("SolveParams: field 'solution_limit' must be at least 1.")
        if self.workers < 1:
            raise ValueError("SolveParams: field 'workers' must be at least 1.")
        if self.first_solution not in FIRST_SOLUTIONS:
            raise ValueError(
                f"SolveParams: field 'first_solution' is {self.first_solution!r}; "
                f"choose one of {', '.join(FIRST_SOLUTIONS)}."
            )
        if self.metaheuristic not in METAHEURISTICS:
            raise ValueError(
                f"SolveParams: field 'metaheuristic' is {self.metaheuristic!r}; "
                f"choose one of {', '.join(METAHEURISTICS)}."
            )
        if self.gls_lambda <= 0:
            raise ValueError("SolveParams: field 'gls_lambda' must be positive.")
        if not 0.0 <= self.pyvrp_share < 1.0:
            raise ValueError("SolveParams: field 'pyvrp_share' must be in [0, 1).")
        if not 0.0 < self.vroom_share < 1.0:
            raise ValueError("SolveParams: field 'vroom_share' must be in (0, 1).")

    @staticmethod
    def all_cores() -> int:
        """How many worker processes use every core of this machine."""
        return max(1, os.cpu_count() or 1)
