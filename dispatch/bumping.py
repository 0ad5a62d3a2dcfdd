"""Room in a full day for a visit that outranks others: the warm start of a re-planning solve.

A local search started from a day whose capable technicians are full rarely finds the exchange
"take an ordinary visit out, put the urgent one in": each half of it alone makes the plan worse.
``make_room`` does that exchange before the search: each wanted visit, dearest first, goes where
it fits as is, or onto the capable technician whose route gives way at the least cost (visits of
a lower penalty taken out, never a locked visit or a promise). The solver then places the
visits taken out again wherever they still fit, and polishes the whole.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from solver import Problem
from solver import Technician as SolverTechnician
from solver import Visit as SolverVisit
from solver.engine import visit_penalty
from solver.schedule import schedule_route


@dataclass(frozen=True)
class _Option:
    """One way to fit a visit into one technician's route."""

    bumped_penalty: int  # what the visits taken out would cost if they stayed out
    added_travel: int
    technician: str
    route: tuple[str, ...]
    bumped: tuple[str, ...]

    def key(self) -> tuple[int, int, int, str]:
        """Cheapest first: least penalty bumped, fewest visits bumped, least travel added."""
        return (self.bumped_penalty, len(self.bumped), self.added_travel, self.technician)


def make_room(problem: Problem, routes: Mapping[str, Sequence[str]], wanted: Iterable[str], *,
              protected: Collection[str] = ()) -> dict[str, tuple[str, ...]]:
    """The routes with each ``wanted`` visit of ``problem`` placed, dearest first, where it fits
    or where visits of a lower penalty give way (never locked or ``protected`` ones). Visits
    taken out are left for the solver; a wanted visit that fits nowhere stays out."""
    by_id = {v.id: v for v in problem.visits}
    current = {t.id: tuple(c for c in routes.get(t.id, ()) if c in by_id)
               for t in problem.technicians}
    placed = {code for codes in current.values() for code in codes}
    todo = sorted((code for code in set(wanted) if code in by_id and code not in placed),
                  key=lambda code: (-visit_penalty(problem, by_id[code]), code))
    for code in todo:
        visit = by_id[code]
        options = [option for k in problem.capable_technicians(visit)
                   if (option := _best_fit(problem, problem.technicians[k],
                                           current[problem.technicians[k].id], visit,
                                           set(protected))) is not None]
        if options:
            best = min(options, key=_Option.key)
            current[best.technician] = best.route
    return {tech: codes for tech, codes in current.items() if codes}


def _best_fit(problem: Problem, tech: SolverTechnician, route: tuple[str, ...],
              visit: SolverVisit, protected: set[str]) -> _Option | None:
    """The cheapest way to fit ``visit`` into ``route``: as is, bumping one visit, or bumping
    the cheapest visits one after another until it fits."""
    by_id = {v.id: v for v in problem.visits}
    if not _feasible(problem, tech, [by_id[c] for c in route]):
        return None  # a route already broken (an overrun): the solver repairs it first
    fitted = _cheapest_insertion(problem, tech, route, visit)
    if fitted is not None:
        return _Option(0, fitted[1], tech.id, fitted[0], ())
    ceiling = visit_penalty(problem, visit)
    bumpable = sorted((c for c in route if not by_id[c].locked and c not in protected
                       and visit_penalty(problem, by_id[c]) < ceiling),
                      key=lambda c: (visit_penalty(problem, by_id[c]), c))
    singles = [option for c in bumpable
               if (option := _fit_without(problem, tech, route, visit, (c,))) is not None]
    if singles:
        return min(singles, key=_Option.key)
    for count in range(2, len(bumpable) + 1):
        option = _fit_without(problem, tech, route, visit, tuple(bumpable[:count]))
        if option is not None:
            return option
    return None


def _fit_without(problem: Problem, tech: SolverTechnician, route: tuple[str, ...],
                 visit: SolverVisit, bumped: tuple[str, ...]) -> _Option | None:
    """``visit`` fitted into ``route`` once ``bumped`` are taken out, or None."""
    rest = tuple(c for c in route if c not in bumped)
    fitted = _cheapest_insertion(problem, tech, rest, visit)
    if fitted is None:
        return None
    penalty = sum(visit_penalty(problem, problem.visits[problem.visit_index(c)])
                  for c in bumped)
    return _Option(penalty, fitted[1], tech.id, fitted[0], bumped)


def _cheapest_insertion(problem: Problem, tech: SolverTechnician, route: tuple[str, ...],
                        visit: SolverVisit) -> tuple[tuple[str, ...], int] | None:
    """(route with ``visit`` inserted, travel it adds) at the feasible position adding the least
    travel, after the locked visits; None when no position is feasible."""
    by_id = {v.id: v for v in problem.visits}
    heads = sum(1 for c in route if by_id[c].locked)
    places = ([tech.start_location] + [by_id[c].location for c in route]
              + [tech.end_location])
    durations = problem.durations
    positions = sorted(
        (int(durations[places[p], visit.location] + durations[visit.location, places[p + 1]]
             - durations[places[p], places[p + 1]]), p)
        for p in range(heads, len(route) + 1))
    for added, p in positions:
        trial = route[:p] + (visit.id,) + route[p:]
        if _feasible(problem, tech, [by_id[c] for c in trial]):
            return trial, added
    return None


def _feasible(problem: Problem, tech: SolverTechnician, visits: Sequence[SolverVisit]) -> bool:
    """Whether the technician can make these visits in this order within every rule."""
    return schedule_route(problem, tech, visits).feasible
