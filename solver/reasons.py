"""Why a visit is left out of the plan: a reason code and a courteous sentence in two languages.

Each unassigned visit is checked against every technician, from the most basic cause to the
subtlest, and the first that holds is reported:

``no_technician``      nobody works that day at all;
``no_skill``           no technician has a required skill at the required level;
``pinned_unavailable`` the visit is pinned to a technician who cannot do it, even on an empty day;
``no_shift``           no capable technician works at any time the visit could start;
``capacity`` / ``max_visits``  the vehicle's load or the visit count rules it out;
``needs_overtime``     it fits only if a technician works longer than allowed;
``needs_wider_window`` it fits only if the customer's window is widened;
``unreachable``        no capable technician reaches it inside a window, even on an empty day;
``too_costly``         it fits into the plan as it is, but costs more than leaving it out;
``crowded_out``        it fits on an empty day but the day is full of other visits.

Params carry the ids and numbers behind the sentence (seconds, technician ids) and the suggested
fix in both languages (``fix_en``, ``fix_zh``). Clock times are the plan's day, HH:MM from the
epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from solver.model import Problem, Technician, TimeWindow, Visit
from solver.result import Route, Unassigned
from solver.schedule import Relax, Schedule, earliest_start, route_slack, schedule_route

Routes = Mapping[str, Sequence[str]] | Iterable[Route]
DAY = 86_400
#: Overtime "without limit" when asking how much of it a visit would need.
ANY_OVERTIME = 10**9


def explain_unassigned(
    problem: Problem, routes: Routes, unassigned_ids: Iterable[str]
) -> tuple[Unassigned, ...]:
    """A reason for each unassigned visit, in the order given.

    ``routes`` is the plan: technician id -> ordered visit ids, or the result's routes.
    """
    plan = _Plan(problem, _plan_of(problem, routes))
    return tuple(_explain(problem, plan, problem.visits[problem.visit_index(v)])
                 for v in unassigned_ids)


def _plan_of(problem: Problem, routes: Routes) -> dict[str, tuple[Visit, ...]]:
    pairs = routes.items() if isinstance(routes, Mapping) else (
        (r.technician, r.visit_ids) for r in routes)
    return {tid: tuple(problem.visits[problem.visit_index(v)] for v in ids) for tid, ids in pairs}


@dataclass(frozen=True)
class _Day:
    """A technician's current day, timed once and prepared for quick insertion tests: the end
    of each stop, the latest start of each stop that keeps the rest of the day feasible (with
    and without the hard end of the day), and the day's travel time."""

    tech: Technician
    visits: tuple[Visit, ...]
    ends: tuple[int, ...]
    latest: tuple[int, ...]
    latest_any_end: tuple[int, ...]
    travel: int
    timed: bool  # False: the day could not be timed, so no position is ruled out early


class _Plan:
    """The plan's routes by technician, each day prepared once for all unassigned visits."""

    def __init__(self, problem: Problem, routes: Mapping[str, tuple[Visit, ...]]) -> None:
        self.problem = problem
        self.routes = routes
        self._days: dict[str, _Day] = {}

    def get(self, tech_id: str, default: tuple[Visit, ...] = ()) -> tuple[Visit, ...]:
        """The technician's visits in order."""
        return self.routes.get(tech_id, default)

    def day(self, tech: Technician) -> _Day:
        """The technician's prepared day."""
        if tech.id not in self._days:
            self._days[tech.id] = _prepare_day(self.problem, tech, self.get(tech.id))
        return self._days[tech.id]


def _prepare_day(problem: Problem, tech: Technician, visits: tuple[Visit, ...]) -> _Day:
    schedule = schedule_route(problem, tech, visits)
    if not schedule.feasible:
        return _Day(tech, visits, (), (), (), _base_travel(problem, tech, visits), False)
    latest = route_slack(problem, tech, schedule, visits)
    unlimited = replace(tech, max_overtime=ANY_OVERTIME)
    latest_any_end = route_slack(problem, unlimited, schedule, visits)
    return _Day(tech, visits, tuple(s.end for s in schedule.stops), tuple(latest),
                tuple(latest_any_end), schedule.travel_time, True)


@dataclass(frozen=True)
class _Reason:
    code: str
    en: str
    zh: str
    fix_en: str
    fix_zh: str
    params: Mapping[str, object]


def _explain(problem: Problem, plan: _Plan, visit: Visit) -> Unassigned:
    """Run the checks, most basic first; the first that holds is the reason."""
    capable = [problem.technicians[k] for k in problem.capable_technicians(visit)]
    checks = (
        lambda: _no_technician(problem),
        lambda: _no_skill(problem, visit),
        lambda: _pinned_unavailable(problem, visit),
        lambda: _no_shift(capable, visit),
        lambda: _empty_day_limits(capable, visit),
        lambda: _empty_day(problem, capable, visit),
        lambda: _in_plan(problem, plan, capable, visit),
    )
    for check in checks:
        reason = check()
        if reason is not None:
            return _to_unassigned(visit, reason)
    raise AssertionError("the last check always gives a reason")


def _to_unassigned(visit: Visit, r: _Reason) -> Unassigned:
    params = dict(r.params)
    params.update(fix_en=r.fix_en, fix_zh=r.fix_zh)
    return Unassigned(visit.id, r.code, f"{r.en} {r.fix_en}", f"{r.zh}{r.fix_zh}", params)


def clock(seconds: int) -> str:
    """Seconds from the epoch as HH:MM of the plan's day (later days marked +Nd)."""
    days, rest = divmod(int(seconds), DAY)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}"
    return text if days == 0 else f"{text} (+{days}d)"


def _minutes(seconds: int) -> int:
    return -(-int(seconds) // 60)


# --- the checks, most basic first ---------------------------------------------------------


def _no_technician(problem: Problem) -> _Reason | None:
    if problem.technicians:
        return None
    return _Reason(
        "no_technician",
        "No technician is working on this day.",
        "当天没有技师当班。",
        "Please schedule a technician's shift or plan the visit for another day.",
        "请为技师安排班次，或改约其他日期。",
        {},
    )


def _no_skill(problem: Problem, visit: Visit) -> _Reason | None:
    if any(t.can_do(visit) for t in problem.technicians):
        return None
    missing = sorted(code for code, level in visit.skills.items()
                     if not any(t.skills.get(code, 0) >= level for t in problem.technicians))
    if not missing:  # each skill is held, but never all by one person
        missing = sorted(visit.skills)
    names = ", ".join(f"{c} (level {visit.skills[c]})" for c in missing)
    names_zh = "、".join(f"{c}（{visit.skills[c]}级）" for c in missing)
    return _Reason(
        "no_skill",
        f"No technician has the skill this visit needs: {names}.",
        f"没有技师具备此工单所需的技能：{names_zh}。",
        "Please assign a qualified technician or adjust the required level.",
        "请安排具备资质的技师，或调整所需技能等级。",
        {"skills": missing, "levels": {c: visit.skills[c] for c in missing}},
    )


def _pinned_unavailable(problem: Problem, visit: Visit) -> _Reason | None:
    if visit.pinned_technician is None:
        return None
    tech = problem.technicians[problem.technician_index(visit.pinned_technician)]
    if tech.can_do(visit):
        alone = schedule_route(problem, tech, [visit])
        if alone.feasible:
            return None
        why = alone.violation.field if alone.violation else "windows"
    else:
        why = "skills"
    why_en = {"skills": "does not have the required skill",
              "windows": "cannot be there within the agreed time",
              "latest_end": "would have to work past the end of the shift",
              "breaks": "cannot fit it around the lunch break"}.get(why, "cannot do it")
    why_zh = {"skills": "不具备所需技能", "windows": "无法在约定时间内到达",
              "latest_end": "需超出班次结束时间工作", "breaks": "无法与午休时间错开"}.get(
        why, "无法完成")
    return _Reason(
        "pinned_unavailable",
        f"The visit is assigned to technician {tech.id}, who {why_en}.",
        f"此工单指定由技师 {tech.id} 完成，但该技师{why_zh}。",
        "Please assign another technician or agree a new time with the customer.",
        "请改派其他技师，或与客户另约时间。",
        {"technician": tech.id, "why": why},
    )


def _no_shift(capable: Sequence[Technician], visit: Visit) -> _Reason | None:
    windows = visit.start_windows()
    if any(w.start <= t.latest_end and w.end >= t.shift_start for t in capable for w in windows):
        return None
    shown = ", ".join(f"{clock(w.start)}-{clock(w.end)}" for w in windows) or "-"
    return _Reason(
        "no_shift",
        f"No qualified technician is on duty during the visit's time window ({shown}).",
        f"在该工单的时间窗口（{shown}）内，没有具备资质的技师当班。",
        "Please offer the customer a time within working hours.",
        "请与客户改约在工作时间内的时段。",
        {"technicians": [t.id for t in capable],
         "windows": [[w.start, w.end] for w in windows]},
    )


def _empty_day_limits(capable: Sequence[Technician], visit: Visit) -> _Reason | None:
    if not any(t.capacity is None or t.capacity >= visit.load for t in capable):
        most = max(t.capacity or 0 for t in capable)
        return _Reason(
            "capacity",
            f"The visit's load ({visit.load}) is more than any qualified technician's vehicle "
            f"holds (at most {most}).",
            f"此工单的装载量（{visit.load}）超过所有具备资质技师的车辆容量（最多 {most}）。",
            "Please send a larger vehicle or split the delivery.",
            "请安排更大的车辆或分批配送。",
            {"load": visit.load, "largest_capacity": most},
        )
    if not any(t.max_visits is None or t.max_visits >= 1 for t in capable):
        return _max_visits_reason([t.id for t in capable])
    return None


def _max_visits_reason(tech_ids: Sequence[str]) -> _Reason:
    shown = ", ".join(tech_ids)
    return _Reason(
        "max_visits",
        f"The qualified technicians ({shown}) already have the most visits allowed for the day.",
        f"具备资质的技师（{shown}）当天的工单数已达上限。",
        "Please raise the daily visit limit or plan it for another day.",
        "请提高每日工单上限，或改约其他日期。",
        {"technicians": list(tech_ids)},
    )


def _empty_day(problem: Problem, capable: Sequence[Technician], visit: Visit) -> _Reason | None:
    """Even alone on an empty day, can anyone do it? If not, what would it take?"""
    if any(schedule_route(problem, t, [visit]).feasible for t in capable):
        return None
    empty = _Plan(problem, {})
    overtime = _overtime_fix(problem, empty, capable, visit)
    if overtime is not None:
        return overtime
    wider = _window_fix(problem, empty, capable, visit)
    if wider is not None:
        return wider
    return _Reason(
        "unreachable",
        "No qualified technician can reach the customer within the agreed time, even with "
        "nothing else planned.",
        "即使当天没有其他安排，也没有具备资质的技师能在约定时间内到达客户处。",
        "Please agree a different day or time with the customer.",
        "请与客户另约日期或时间。",
        {"technicians": [t.id for t in capable]},
    )


def _in_plan(problem: Problem, plan: _Plan,
             capable: Sequence[Technician], visit: Visit) -> _Reason:
    """It fits alone: what in the current plan keeps it out?"""
    fit = _best_insertion(problem, plan, capable, visit, Relax())
    if fit is not None:
        tech, added = fit
        return _Reason(
            "too_costly",
            f"It could fit on technician {tech}'s route, but the extra {_minutes(added)} minutes "
            f"of driving cost more than leaving it out.",
            f"此工单可安排给技师 {tech}，但需额外行驶 {_minutes(added)} 分钟，成本高于暂不安排。",
            "Please raise its priority if it must be done today.",
            "如必须当天完成，请提高其优先级。",
            {"technician": tech, "added_travel": added},
        )
    if _best_insertion(problem, plan, capable, visit, Relax(limits=True)) is not None:
        return _limits_reason(problem, plan, capable, visit)
    found = _overtime_fix(problem, plan, capable, visit) or _window_fix(
        problem, plan, capable, visit)
    return found or _crowded_out(problem, plan, capable, visit)


def _best_insertion(problem: Problem, plan: _Plan, capable: Sequence[Technician],
                    visit: Visit, relax: Relax) -> tuple[str, int] | None:
    """The technician and added travel of the cheapest feasible insertion, if any."""
    options = sorted((added, tech.id, position, tech) for tech in capable
                     for added, position in _quick_positions(problem, plan.day(tech), visit,
                                                             relax))
    for added, tech_id, position, tech in options:
        # Added travel is exact before the reschedule, so the first that holds is cheapest.
        if _schedule_with(problem, plan.day(tech), visit, position, relax).feasible:
            return tech_id, added
    return None


def _insertions(problem: Problem, day: _Day, visit: Visit, relax: Relax) -> Iterable[Schedule]:
    """Feasible schedules with the visit inserted at each position that may work (locked
    visits stay first)."""
    for _, position in _quick_positions(problem, day, visit, relax):
        schedule = _schedule_with(problem, day, visit, position, relax)
        if schedule.feasible:
            yield schedule


def _schedule_with(problem: Problem, day: _Day, visit: Visit, position: int,
                   relax: Relax) -> Schedule:
    route = day.visits[:position] + (visit,) + day.visits[position:]
    return schedule_route(problem, day.tech, route, relax)


def _quick_positions(problem: Problem, day: _Day, visit: Visit, relax: Relax
                     ) -> list[tuple[int, int]]:
    """(added travel, position) for each position that passes a necessary test: the visit can
    start in a window after the previous stop ends, and the next stop can still start by its
    latest start (breaks ignored, so nothing feasible is ruled out)."""
    tech, visits, dur = day.tech, day.visits, problem.durations
    if not relax.limits and (
            (tech.max_visits is not None and len(visits) >= tech.max_visits)
            or (tech.capacity is not None
                and sum(v.load for v in visits) + visit.load > tech.capacity)):
        return []
    first = sum(1 for v in visits if v.locked)
    places = [tech.start_location, *(v.location for v in visits), tech.end_location]
    windows, service = visit.start_windows(), tech.service_time(visit)
    latest = day.latest_any_end if relax.latest_end else day.latest
    hard_end = None if relax.latest_end else tech.latest_end
    found = []
    for position in range(first, len(visits) + 1):
        a, b = places[position], places[position + 1]
        to_visit, from_visit = int(dur[a, visit.location]), int(dur[visit.location, b])
        if day.timed and not _may_fit(day, position, to_visit, from_visit, windows, service,
                                      visit.id in relax.windows_of, latest, hard_end):
            continue
        found.append((to_visit + from_visit - int(dur[a, b]), position))
    return found


def _may_fit(day: _Day, position: int, to_visit: int, from_visit: int,
             windows: Sequence[TimeWindow], service: int, any_window: bool,
             latest: Sequence[int], hard_end: int | None) -> bool:
    free = day.ends[position - 1] if position else day.tech.shift_start
    start = earliest_start(windows, free + to_visit)
    if start is None:
        if not any_window:
            return False
        start = free + to_visit
    after = start + service + from_visit
    if position < len(day.visits):
        return after <= latest[position]
    return hard_end is None or after <= hard_end


def _base_travel(problem: Problem, tech: Technician, route: tuple[Visit, ...]) -> int:
    places = [tech.start_location, *(v.location for v in route), tech.end_location]
    return sum(int(problem.durations[a, b]) for a, b in zip(places, places[1:])) if route else 0


def _limits_reason(problem: Problem, plan: _Plan,
                   capable: Sequence[Technician], visit: Visit) -> _Reason:
    full = [t for t in capable
            if t.max_visits is not None and len(plan.get(t.id, ())) >= t.max_visits]
    if full:
        return _max_visits_reason([t.id for t in full])
    return _Reason(
        "capacity",
        "The qualified technicians' vehicles are already full for the day.",
        "具备资质的技师车辆当天已满载。",
        "Please plan it for another day or send another vehicle.",
        "请改约其他日期，或另派车辆。",
        {"technicians": [t.id for t in capable], "load": visit.load},
    )


def _overtime_fix(problem: Problem, plan: _Plan,
                  capable: Sequence[Technician], visit: Visit) -> _Reason | None:
    """The least overtime with which some technician could take it."""
    best: tuple[int, Technician] | None = None
    for tech in capable:
        for schedule in _insertions(problem, plan.day(tech), visit, Relax(latest_end=True)):
            if best is None or schedule.overtime < best[0]:
                best = (schedule.overtime, tech)
    if best is None:
        return None
    seconds, tech = best
    mins = _minutes(seconds)
    return _Reason(
        "needs_overtime",
        f"It fits only if technician {tech.id} works {mins} minutes of overtime "
        f"(allowed: {_minutes(tech.max_overtime)}).",
        f"仅当技师 {tech.id} 加班 {mins} 分钟时才能安排（允许加班 {_minutes(tech.max_overtime)} "
        f"分钟）。",
        "Please approve the overtime or plan it for another day.",
        "请批准加班，或改约其他日期。",
        {"technician": tech.id, "overtime": seconds, "max_overtime": tech.max_overtime},
    )


def _window_fix(problem: Problem, plan: _Plan,
                capable: Sequence[Technician], visit: Visit) -> _Reason | None:
    """The least widening of the customer's window with which someone could take it."""
    best: tuple[int, Technician, TimeWindow] | None = None
    windows = visit.start_windows()
    for tech in capable:
        for schedule in _insertions(problem, plan.day(tech), visit,
                                    Relax(windows_of=frozenset({visit.id}))):
            start = next(s.start for s in schedule.stops if s.visit == visit.id)
            wider, gain = _widened(windows, start)
            if best is None or gain < best[0]:
                best = (gain, tech, wider)
    if best is None:
        return None
    _, tech, wider = best
    span = f"{clock(wider.start)}-{clock(wider.end)}"
    return _Reason(
        "needs_wider_window",
        f"It fits only if the customer's window is widened to {span} (technician {tech.id}).",
        f"仅当客户的时间窗口放宽至 {span} 时才能安排（技师 {tech.id}）。",
        "Please ask the customer whether a later arrival suits them.",
        "请询问客户是否接受稍晚上门。",
        {"technician": tech.id, "window_start": wider.start, "window_end": wider.end},
    )


def _widened(windows: Sequence[TimeWindow], start: int) -> tuple[TimeWindow, int]:
    """The window stretched to reach ``start``, and by how many seconds it grew."""
    before = [w for w in windows if w.start <= start]
    if not before:
        return TimeWindow(start, windows[0].end if windows else start), 0
    last = before[-1]
    return TimeWindow(last.start, max(last.end, start)), max(0, start - last.end)


def _crowded_out(problem: Problem, plan: _Plan,
                 capable: Sequence[Technician], visit: Visit) -> _Reason:
    """Name the best candidate and, if cheaply found, the visit it would have to drop."""
    singles = [(schedule_route(problem, t, [visit]), t) for t in capable]
    alone = sorted((single.travel_time, t.id, t) for single, t in singles if single.feasible)
    candidates = [t for _, _, t in alone[:3]]
    displaced = _displaceable(problem, plan, candidates, visit)
    tech = displaced[0] if displaced else (candidates[0].id if candidates else "")
    params: dict[str, object] = {"technician": tech}
    en = (f"It fits on an empty day, but technician {tech}'s day is full with visits of the same "
          f"or higher priority.")
    zh = f"此工单单独可以安排，但技师 {tech} 当天已排满同等或更高优先级的工单。"
    if displaced:
        params["displaces"] = displaced[1]
        en += f" It would replace visit {displaced[1]}."
        zh += f"若安排，需替换工单 {displaced[1]}。"
    return _Reason("crowded_out", en, zh,
                   "Please raise its priority, add a technician, or plan it for another day.",
                   "请提高其优先级、增派技师，或改约其他日期。", params)


def _displaceable(problem: Problem, plan: _Plan,
                  candidates: Sequence[Technician], visit: Visit) -> tuple[str, str] | None:
    """(technician, visit) whose removal would let the visit in, lowest priority first."""
    removals = sorted((other.priority, tech.id, other.id, k, tech)
                      for tech in candidates
                      for k, other in enumerate(plan.get(tech.id, ())) if not other.locked)
    for _, tech_id, other_id, k, tech in removals:
        route = plan.get(tech.id, ())
        rest = _prepare_day(problem, tech, route[:k] + route[k + 1:])
        if next(iter(_insertions(problem, rest, visit, Relax())), None) is not None:
            return tech_id, other_id
    return None
