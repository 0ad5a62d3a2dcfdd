"""An independent plan checker: recomputes a result from the problem and lists every violation.

It shares no code with the engine, so a bug there cannot hide here. Timing conventions checked:
a technician leaves ``start_time`` (not before the shift), each stop's arrival is the previous end
plus the travel time (a break between the two stops may delay it), service starts at or after
arrival inside one of the visit's windows and lasts the technician's service time, breaks start
in their ranges, last their full length and never overlap service or each other, and the day
ends, back home, no later than the shift end plus the maximum overtime.
"""

from __future__ import annotations

from collections.abc import Sequence

from solver.model import Problem, Technician, Visit
from solver.result import BreakPlacement, Result, Route


def check_result(problem: Problem, result: Result) -> list[str]:
    """Every rule of the problem that the result breaks, one sentence each; empty = valid."""
    errors: list[str] = []
    errors += _check_accounting(problem, result)
    tech_ids = {t.id for t in problem.technicians}
    for route in result.routes:
        if route.technician not in tech_ids:
            errors.append(f"Route of technician {route.technician!r}: no such technician.")
            continue
        tech = problem.technicians[problem.technician_index(route.technician)]
        errors += _check_route(problem, tech, route)
    errors += _check_kpis(result)
    errors += _check_objective(result)
    return errors


def _check_accounting(problem: Problem, result: Result) -> list[str]:
    """Each visit exactly once: on one route or in the unassigned list, never both."""
    errors: list[str] = []
    seen: dict[str, str] = {}
    routed_techs: set[str] = set()
    for route in result.routes:
        if route.technician in routed_techs:
            errors.append(f"Technician {route.technician!r} has more than one route.")
        routed_techs.add(route.technician)
        for stop in route.stops:
            where = f"the route of {route.technician!r}"
            if stop.visit in seen:
                errors.append(f"Visit {stop.visit!r} appears twice: on {seen[stop.visit]} and "
                              f"on {where}.")
            seen.setdefault(stop.visit, where)
    for item in result.unassigned:
        if item.visit in seen:
            errors.append(f"Visit {item.visit!r} is both unassigned and on {seen[item.visit]}.")
        seen.setdefault(item.visit, "the unassigned list")
    known = {v.id for v in problem.visits}
    for visit_id in seen:
        if visit_id not in known:
            errors.append(f"Visit {visit_id!r} is in the result but not in the problem.")
    for visit in problem.visits:
        if visit.id not in seen:
            errors.append(f"Visit {visit.id!r} is neither on a route nor unassigned.")
        elif visit.required and seen[visit.id] == "the unassigned list":
            errors.append(f"Visit {visit.id!r} is required but left unassigned.")
    return errors


def _check_route(problem: Problem, tech: Technician, route: Route) -> list[str]:
    """All rules that concern one technician's day."""
    who = f"Technician {tech.id!r}"
    known = [s for s in route.stops if _has_visit(problem, s.visit)]
    visits = [problem.visits[problem.visit_index(s.visit)] for s in known]
    if len(known) != len(route.stops):
        return [f"{who}: the route names visits that are not in the problem."]
    errors: list[str] = []
    errors += _check_assignment(tech, visits)
    errors += _check_limits(tech, visits)
    errors += _check_timing(problem, tech, route, visits)
    errors += _check_breaks(tech, route)
    errors += _check_route_totals(route)
    return errors


def _has_visit(problem: Problem, visit_id: str) -> bool:
    try:
        problem.visit_index(visit_id)
    except KeyError:
        return False
    return True


def _check_assignment(tech: Technician, visits: Sequence[Visit]) -> list[str]:
    """Skills, pins, and locked visits ahead of any unlocked one."""
    errors: list[str] = []
    who = f"Technician {tech.id!r}"
    for visit in visits:
        for code, level in visit.skills.items():
            have = tech.skills.get(code, 0)
            if have < level:
                errors.append(f"{who}, visit {visit.id!r}: needs skill {code!r} at level {level}, "
                              f"the technician has level {have}.")
        if visit.pinned_technician is not None and visit.pinned_technician != tech.id:
            errors.append(f"{who}, visit {visit.id!r}: the visit is pinned to "
                          f"{visit.pinned_technician!r}.")
    seen_unlocked = False
    for visit in visits:
        if visit.locked and seen_unlocked:
            errors.append(f"{who}, visit {visit.id!r}: a locked visit comes after an unlocked one.")
        seen_unlocked = seen_unlocked or not visit.locked
    return errors


def _check_limits(tech: Technician, visits: Sequence[Visit]) -> list[str]:
    """Maximum number of visits and vehicle capacity."""
    errors: list[str] = []
    who = f"Technician {tech.id!r}"
    if tech.max_visits is not None and len(visits) > tech.max_visits:
        errors.append(f"{who}: {len(visits)} visits, more than the maximum of {tech.max_visits}.")
    load = sum(v.load for v in visits)
    if tech.capacity is not None and load > tech.capacity:
        errors.append(f"{who}: a load of {load}, more than the capacity of {tech.capacity}.")
    return errors


def _breaks_between(breaks: Sequence[BreakPlacement], after_stop: int) -> list[BreakPlacement]:
    return [b for b in breaks if b.after_stop == after_stop]


def _check_timing(
    problem: Problem, tech: Technician, route: Route, visits: Sequence[Visit]
) -> list[str]:
    """Travel, arrival, waiting, windows, service time, lateness, shift and overtime."""
    errors: list[str] = []
    who = f"Technician {tech.id!r}"
    if route.start_time < tech.shift_start:
        errors.append(f"{who}: leaves at {route.start_time}, before the shift starts at "
                      f"{tech.shift_start}.")
    place, free_at = tech.start_location, route.start_time
    for k, (stop, visit) in enumerate(zip(route.stops, visits)):
        at = f"{who}, visit {visit.id!r}"
        travel = int(problem.durations[place, visit.location])
        metres = int(problem.distances[place, visit.location])
        if stop.travel_time != travel:
            errors.append(f"{at}: travel time {stop.travel_time} s, the matrix says {travel} s.")
        if stop.travel_distance != metres:
            errors.append(f"{at}: travel distance {stop.travel_distance} m, the matrix says "
                          f"{metres} m.")
        gap_breaks = _breaks_between(route.breaks, k)
        errors += _check_gap(at, free_at, stop.arrival, stop.start, travel, gap_breaks)
        if not any(w.contains(stop.start) for w in visit.start_windows()):
            errors.append(f"{at}: starts at {stop.start}, outside its windows "
                          f"{_windows_text(visit)}.")
        if stop.end - stop.start != tech.service_time(visit):
            errors.append(f"{at}: service lasts {stop.end - stop.start} s, the technician needs "
                          f"{tech.service_time(visit)} s.")
        lateness = max(0, stop.start - visit.due) if visit.due is not None else 0
        if stop.lateness != lateness:
            errors.append(f"{at}: lateness {stop.lateness} s, should be {lateness} s.")
        place, free_at = visit.location, stop.end
    errors += _check_return(problem, tech, route, place, free_at)
    return errors


def _check_gap(
    at: str, free_at: int, arrival: int, start: int, travel: int,
    gap_breaks: Sequence[BreakPlacement],
) -> list[str]:
    """Between the previous end and the next start: travel, breaks, arrival and waiting."""
    errors: list[str] = []
    pause = sum(b.duration for b in gap_breaks)
    if not gap_breaks and arrival != free_at + travel:
        errors.append(f"{at}: arrives at {arrival}, but the previous place is left at {free_at} "
                      f"and the travel takes {travel} s.")
    if gap_breaks and arrival < free_at + travel:
        errors.append(f"{at}: arrives at {arrival}, but the previous place is left at {free_at} "
                      f"and the travel takes {travel} s.")
    if start < arrival:
        errors.append(f"{at}: starts at {start}, before arriving at {arrival}.")
    if start - free_at < travel + pause:
        errors.append(f"{at}: only {start - free_at} s between the previous end and the start, "
                      f"not enough for {travel} s of travel and {pause} s of break.")
    for brk in gap_breaks:
        if brk.start < free_at or brk.start + brk.duration > start:
            errors.append(f"{at}: the break at {brk.start} overlaps service.")
    return errors


def _check_return(
    problem: Problem, tech: Technician, route: Route, place: int, free_at: int
) -> list[str]:
    """The trip home, the end of the day, overtime and its cap."""
    errors: list[str] = []
    who = f"Technician {tech.id!r}"
    if not route.stops:
        return errors
    travel = int(problem.durations[place, tech.end_location])
    metres = int(problem.distances[place, tech.end_location])
    if route.return_travel_time != travel:
        errors.append(f"{who}: return travel {route.return_travel_time} s, the matrix says "
                      f"{travel} s.")
    if route.return_distance != metres:
        errors.append(f"{who}: return distance {route.return_distance} m, the matrix says "
                      f"{metres} m.")
    tail = _breaks_between(route.breaks, len(route.stops))
    pause = sum(b.duration for b in tail)
    if route.end_time < free_at + travel + pause:
        errors.append(f"{who}: back at {route.end_time}, but the last visit ends at {free_at} and "
                      f"the way home takes {travel} s (plus {pause} s of break).")
    for brk in tail:
        if brk.start < free_at or brk.start + brk.duration > route.end_time:
            errors.append(f"{who}: the break at {brk.start} lies outside the working day.")
    if route.end_time > tech.latest_end:
        errors.append(f"{who}: back at {route.end_time}, after the latest end {tech.latest_end} "
                      f"(shift end plus maximum overtime).")
    overtime = max(0, route.end_time - tech.shift_end)
    if route.overtime != overtime:
        errors.append(f"{who}: overtime {route.overtime} s, should be {overtime} s.")
    return errors


def _check_breaks(tech: Technician, route: Route) -> list[str]:
    """Each break once, inside its start range, full length, not overlapping another."""
    errors: list[str] = []
    who = f"Technician {tech.id!r}"
    if not route.stops:
        return errors
    placed = sorted(route.breaks, key=lambda b: b.start)
    for brk in placed:
        if not 0 <= brk.after_stop <= len(route.stops):
            errors.append(f"{who}: a break is placed after stop {brk.after_stop}, which does not "
                          f"exist.")
    for a, b in zip(placed, placed[1:]):
        if b.start < a.start + a.duration:
            errors.append(f"{who}: the breaks at {a.start} and {b.start} overlap.")
    unmatched = list(placed)
    for brk in sorted(tech.breaks, key=lambda b: b.earliest):
        match = next((p for p in unmatched if brk.earliest <= p.start <= brk.latest
                      and p.duration == brk.duration), None)
        if match is not None:
            unmatched.remove(match)
        elif route.end_time > brk.earliest:
            errors.append(f"{who}: the break of {brk.duration} s starting between {brk.earliest} "
                          f"and {brk.latest} is missing or misplaced.")
    for extra in unmatched:
        errors.append(f"{who}: the break at {extra.start} ({extra.duration} s) matches none of "
                      f"the technician's breaks.")
    return errors


def _check_route_totals(route: Route) -> list[str]:
    """Route travel and distance equal the sum over its legs."""
    errors: list[str] = []
    if not route.stops:
        return errors
    who = f"Technician {route.technician!r}"
    travel = sum(s.travel_time for s in route.stops) + route.return_travel_time
    distance = sum(s.travel_distance for s in route.stops) + route.return_distance
    if route.travel_time != travel:
        errors.append(f"{who}: route travel time {route.travel_time} s, its legs add up to "
                      f"{travel} s.")
    if route.distance != distance:
        errors.append(f"{who}: route distance {route.distance} m, its legs add up to "
                      f"{distance} m.")
    for stop in route.stops:
        if stop.waiting < 0 or stop.waiting > stop.start - stop.arrival:
            errors.append(f"{who}, visit {stop.visit!r}: waiting {stop.waiting} s, but arrival "
                          f"is {stop.start - stop.arrival} s before the start.")
    return errors


def _check_kpis(result: Result) -> list[str]:
    """The plan's KPIs equal the sums over its routes."""
    routes = result.routes
    stops = [s for r in routes for s in r.stops]
    expected = {
        "travel_time": sum(r.travel_time for r in routes if r.stops),
        "distance": sum(r.distance for r in routes if r.stops),
        "visits_planned": len(stops),
        "visits_unassigned": len(result.unassigned),
        "service_time": sum(s.end - s.start for s in stops),
        "waiting": sum(s.waiting for s in stops),
        "overtime": sum(r.overtime for r in routes if r.stops),
        "lateness": sum(s.lateness for s in stops),
        "technicians_used": sum(1 for r in routes if r.stops),
    }
    errors = []
    for name, value in expected.items():
        actual = getattr(result.kpis, name)
        if actual != value:
            errors.append(f"KPI {name!r} is {actual}, the routes add up to {value}.")
    return errors


def _check_objective(result: Result) -> list[str]:
    """The objective's terms add up to its total."""
    if "total" not in result.objective:
        return []
    terms = sum(int(v) for k, v in result.objective.items() if k != "total")
    if int(result.objective["total"]) != terms:
        return [f"The objective total {result.objective['total']} is not the sum of its terms "
                f"({terms})."]
    return []


def _windows_text(visit: Visit) -> str:
    return ", ".join(f"[{w.start}, {w.end}]" for w in visit.start_windows()) or "(none)"
