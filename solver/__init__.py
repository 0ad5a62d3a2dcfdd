"""Pure field-service routing: problems in, plans out (integer seconds and metres)."""

from solver.model import (
    Break,
    Problem,
    ProblemBuilder,
    Technician,
    TimeWindow,
    Visit,
    Weights,
    windows,
)
from solver.params import SolveParams
from solver.result import BreakPlacement, Kpis, Result, Route, Stop, Unassigned
from solver.solve import solve

__all__ = [
    "Break",
    "BreakPlacement",
    "Kpis",
    "Problem",
    "ProblemBuilder",
    "Result",
    "Route",
    "SolveParams",
    "Stop",
    "Technician",
    "TimeWindow",
    "Unassigned",
    "Visit",
    "Weights",
    "solve",
    "windows",
]
