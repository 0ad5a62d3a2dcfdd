"""The dispatcher's hand edits of a plan: pin and unpin a visit, move it, see the cost first.

A move is priced by re-timing the routes it touches with ``solver.schedule.schedule_route`` on
the outlet-day's current problem (the same rules the solver plans with). A move that keeps every
rule is *feasible*; one that breaks agreed windows or runs into overtime is still *allowed* (the
dispatcher may know better, and sees the price first); one that no rule relaxation can make work
(the technician is off, lacks the skill, the visit is pinned elsewhere) is refused.
Editing a published plan leaves it untouched and makes the change in a new draft copy.
Functions flush but never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatch import db
from dispatch import models as m
from dispatch.errors import ConflictError, NotFoundError, ValidationError
from dispatch.planning import PlanningInput, build_problem
from dispatch.timeutil import from_seconds, plan_epoch
from solver import Technician as SolverTechnician
from solver import Visit as SolverVisit
from solver.schedule import Relax, Schedule, schedule_route


@dataclass(frozen=True)
class MoveCost:
    """What moving a visit would change: added travel, lateness, overtime, broken windows."""

    visit_id: int
    visit_code: str
    technician_id: int | None  # None: out of the plan (to the unassigned list)
    position: int
    allowed: bool  # the move can be made (perhaps breaking windows or running late)
    feasible: bool  # every rule still holds after the move
    added_travel_seconds: int = 0
    added_lateness_seconds: int = 0
    added_overtime_seconds: int = 0
    windows_broken: tuple[str, ...] = ()
    reason_zh: str = ""
    reason_en: str = ""
    warnings_zh: tuple[str, ...] = ()
    warnings_en: tuple[str, ...] = ()
    # technician id -> the re-timed day (only the routes the move touches)
    schedules: Mapping[int, Schedule] = field(default_factory=dict, repr=False, compare=False)

    def reason(self, lang: str) -> str:
        """The verdict in ``lang`` ("zh" or "en")."""
        return self.reason_zh if lang == "zh" else self.reason_en

    def warnings(self, lang: str) -> tuple[str, ...]:
        """Things to tell the customer or check, in ``lang``."""
        return self.warnings_zh if lang == "zh" else self.warnings_en


# ---------------------------------------------------------------------------------------------
# Pricing a move
# ---------------------------------------------------------------------------------------------


def preview_move(session: Session, plan: m.Plan, visit_id: int, technician_id: int | None,
                 position: int) -> MoveCost:
    """Price moving the visit to ``technician_id``'s route at ``position`` (0 = first visit).

    ``technician_id=None`` takes the visit out of the plan. Nothing is changed.
    """
    _require_editable(plan)
    visit = _visit_of(session, plan, visit_id)
    planning = build_problem(session, plan.outlet, plan.day)
    context = _Context(planning, plan)
    code = visit.code
    if code not in context.visits:
        return _refused(visit, technician_id, position, *_not_plannable(planning, visit))
    routes = context.routes()
    source = next((tech for tech, codes in routes.items() if code in codes), None)
    if technician_id is not None:
        refusal = _refusal(session, context, visit, technician_id)
        if refusal is not None:
            return _refused(visit, technician_id, position, *refusal)
    new_routes = {tech: [c for c in codes if c != code] for tech, codes in routes.items()}
    if technician_id is not None:
        target = new_routes.setdefault(technician_id, [])
        position = max(0, min(position, len(target)))
        target.insert(position, code)
    touched = sorted({t for t in (source, technician_id) if t is not None})
    before = {t: context.schedule(t, routes.get(t, []), relaxed=True) for t in touched}
    after: dict[int, Schedule] = {}
    broken: list[str] = []
    strict = True
    for tech in touched:
        timed = context.schedule(tech, new_routes.get(tech, []), relaxed=False)
        if not timed.feasible:
            strict = False
            timed = context.schedule(tech, new_routes.get(tech, []), relaxed=True)
            if not timed.feasible:
                zh, en = _violation_text(timed)
                return _refused(visit, technician_id, position, zh, en)
            broken += context.broken_windows(timed)
        after[tech] = timed
    return _priced(visit, technician_id, position, before, after, strict, tuple(broken),
                   _handover_warnings(session, visit, technician_id))


def _priced(visit: m.Visit, technician_id: int | None, position: int,
            before: Mapping[int, Schedule], after: Mapping[int, Schedule], strict: bool,
            broken: tuple[str, ...], warnings: tuple[tuple[str, ...], tuple[str, ...]]) -> MoveCost:
    travel = sum(s.travel_time for s in after.values()) - sum(
        s.travel_time for s in before.values())
    late = _lateness(after) - _lateness(before)
    overtime = sum(s.overtime for s in after.values()) - sum(s.overtime for s in before.values())
    feasible = strict and not broken
    if feasible:
        zh, en = "此调整符合所有约定时段和班次。", "The move keeps every agreed window and shift."
    else:
        zh, en = _broken_text(broken, overtime)
    return MoveCost(visit.id, visit.code, technician_id, position, True, feasible, travel, late,
                    overtime, broken, zh, en, warnings[0], warnings[1], dict(after))


def _lateness(schedules: Mapping[int, Schedule]) -> int:
    return sum(stop.lateness for s in schedules.values() for stop in s.stops)


def _broken_text(broken: Sequence[str], overtime: int) -> tuple[str, str]:
    zh_parts, en_parts = [], []
    if broken:
        codes = "、".join(broken)
        zh_parts.append(f"工单 {codes} 将超出客户同意的时段，需先征得客户同意")
        en_parts.append(f"visit(s) {', '.join(broken)} would start outside the customer's "
                        "agreed window: get the customer's consent first")
    if overtime > 0 or not broken:
        zh_parts.append("技师将需要加班")
        en_parts.append("the technician would work past the end of the shift")
    return "；".join(zh_parts) + "。", "; ".join(en_parts).capitalize() + "."


def _violation_text(schedule: Schedule) -> tuple[str, str]:
    violation = schedule.violation
    assert violation is not None
    if violation.field == "breaks":
        return ("调整后技师无法安排午休。", "The technician could no longer take the lunch break.")
    return (f"调整后无法排出可行的行程（{violation.describe()}）。",
            f"No workable day results from this move ({violation.describe()}).")


def _refused(visit: m.Visit, technician_id: int | None, position: int, zh: str,
             en: str) -> MoveCost:
    return MoveCost(visit.id, visit.code, technician_id, position, False, False,
                    reason_zh=zh, reason_en=en)


def _not_plannable(planning: PlanningInput, visit: m.Visit) -> tuple[str, str]:
    for excluded in planning.excluded:
        if excluded.visit_id == visit.id:
            return excluded.message_zh, excluded.message_en
    return ("此工单已结束或被客户拒绝，不能再安排。",
            "The visit is over or was declined by the customer; it cannot be planned.")


def _refusal(session: Session, context: _Context, visit: m.Visit,
             technician_id: int) -> tuple[str, str] | None:
    """Why the visit can never go to this technician today, or None."""
    tech = session.get(m.Technician, technician_id)
    if tech is None or tech.outlet_id != visit.outlet_id:
        raise NotFoundError("technician", technician_id, "技师")
    if technician_id not in context.technicians:
        return (f"{tech.name} 当天不上班。", f"{tech.name} is not working on this day.")
    if visit.pinned_technician_id is not None and visit.pinned_technician_id != technician_id:
        pinned = visit.pinned_technician.name if visit.pinned_technician else ""
        return (f"此工单已锁定给 {pinned}，请先解除锁定。",
                f"The visit is pinned to {pinned}; unpin it first.")
    missing = _missing_skills(context.visits[visit.code], context.technicians[technician_id])
    if missing:
        return (f"{tech.name} 缺少所需技能：{'、'.join(missing)}。",
                f"{tech.name} lacks the skills needed: {', '.join(missing)}.")
    return None


def _missing_skills(visit: SolverVisit, tech: SolverTechnician) -> list[str]:
    return sorted(skill for skill, level in visit.skills.items()
                  if tech.skills.get(skill, 0) < level)


def _handover_warnings(session: Session, visit: m.Visit,
                       technician_id: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A customer promised one technician must agree before another comes (handover rule)."""
    promised = visit.committed_technician_id
    if promised is None or technician_id in (None, promised) or visit.handover_agreed:
        return (), ()
    tech = session.get(m.Technician, promised)
    name = tech.name if tech else str(promised)
    return ((f"已向客户承诺由 {name} 上门；改派前请先告知客户并征得同意。",),
            (f"The customer was promised {name}; tell them and get their consent before "
             "another technician comes.",))


class _Context:
    """The outlet-day's problem seen from one plan: routes, solver records, timings."""

    def __init__(self, planning: PlanningInput, plan: m.Plan) -> None:
        self.planning = planning
        self.plan = plan
        self.visits = {v.id: v for v in planning.problem.visits}
        by_code = {t.id: t for t in planning.problem.technicians}
        self.technicians = {tid: by_code[code] for code, tid in planning.technician_ids.items()}

    def routes(self) -> dict[int, list[str]]:
        """Technician id -> the plan's visit codes in order."""
        routes: dict[int, list[str]] = {}
        for stop in sorted(self.plan.stops, key=lambda s: (s.technician_id, s.sequence)):
            if stop.kind != m.StopKind.VISIT or stop.visit is None:
                continue
            if stop.visit.code not in self.visits:
                raise ValidationError(
                    f"visit {stop.visit.code} of this plan is over or no longer plannable; "
                    "plan the day again before editing it by hand",
                    f"此方案中的工单 {stop.visit.code} 已结束或不可再安排，请先重新规划再手动调整",
                    field="visit", row=stop.visit.code)
            routes.setdefault(stop.technician_id, []).append(stop.visit.code)
        return routes

    def schedule(self, technician_id: int, codes: Sequence[str], *, relaxed: bool) -> Schedule:
        """The earliest timing of ``codes`` for the technician (windows and end relaxed or not)."""
        tech = self.technicians.get(technician_id)
        if tech is None:  # not working today: nothing of theirs can be timed
            return Schedule(str(technician_id), (), (), 0, 0, 0, 0, 0)
        relax = Relax(latest_end=True, windows_of=frozenset(codes), limits=True) \
            if relaxed else Relax()
        return schedule_route(self.planning.problem, tech, [self.visits[c] for c in codes], relax)

    def broken_windows(self, schedule: Schedule) -> list[str]:
        """Codes of the visits that start outside every window they accept."""
        broken = []
        for stop in schedule.stops:
            windows = self.visits[stop.visit].start_windows()
            if not any(w.start <= stop.start <= w.end for w in windows):
                broken.append(stop.visit)
        return broken


# ---------------------------------------------------------------------------------------------
# Applying a move
# ---------------------------------------------------------------------------------------------


def move_visit(session: Session, plan: m.Plan, visit_id: int, technician_id: int | None,
               position: int, *, expected_version: int, actor: str) -> m.Plan:
    """Move the visit as priced by ``preview_move`` and return the plan that holds the change.

    A draft is changed in place; a published plan stays as it is and the change goes into a new
    draft copy. Raises ``ConflictError`` when the plan is not at ``expected_version`` and
    ``ValidationError`` when the move is refused.
    """
    _check_version(plan, expected_version)
    cost = preview_move(session, plan, visit_id, technician_id, position)
    if not cost.allowed:
        raise ValidationError(cost.reason_en, cost.reason_zh, field="technician_id",
                              row=cost.visit_code)
    target = plan if plan.status == m.PlanStatus.DRAFT else copy_as_draft(session, plan, actor)
    epoch = plan_epoch(plan.day, plan.outlet.timezone)
    codes = {v.code: v.id for v in session.scalars(
        select(m.Visit).where(m.Visit.outlet_id == plan.outlet_id, m.Visit.day == plan.day))}
    for stop in [s for s in target.stops if s.technician_id in cost.schedules]:
        target.stops.remove(stop)
    target.unassigned = [u for u in target.unassigned if u.visit_id != visit_id]
    db.flush(session)  # old stops go first: (plan, technician, sequence) is unique
    for tech_id, schedule in cost.schedules.items():
        target.stops.extend(_stops_of(tech_id, schedule, epoch, codes))
    if technician_id is None:
        target.unassigned.append(_taken_out(visit_id, actor))
    target.kpis = _updated_kpis(session, target, cost)
    session.add(m.AuditEvent(
        actor=actor, action="plan.move_visit", entity_type="plan", entity_id=str(target.id),
        before={"plan": plan.id, "version": expected_version},
        after={"visit": cost.visit_code, "technician_id": technician_id,
               "position": cost.position, "feasible": cost.feasible,
               "added_travel_seconds": cost.added_travel_seconds,
               "windows_broken": list(cost.windows_broken)}))
    db.flush(session)
    return target


def _stops_of(tech_id: int, schedule: Schedule, epoch: datetime,
              codes: Mapping[str, int]) -> list[m.PlanStop]:
    """The schedule as plan stops: visits and breaks in time order, sequence from 0."""
    items: list[tuple[int, int, m.PlanStop]] = []
    for position, stop in enumerate(schedule.stops):
        items.append((position, 1, m.PlanStop(
            technician_id=tech_id, kind=m.StopKind.VISIT, visit_id=codes[stop.visit],
            arrival_at=from_seconds(stop.arrival, epoch), start_at=from_seconds(stop.start, epoch),
            end_at=from_seconds(stop.end, epoch), waiting_seconds=stop.waiting,
            travel_seconds=stop.travel_time, travel_meters=stop.travel_distance,
            late_seconds=stop.lateness)))
    for brk in schedule.breaks:
        start = from_seconds(brk.start, epoch)
        items.append((brk.after_stop, 0, m.PlanStop(
            technician_id=tech_id, kind=m.StopKind.BREAK, visit_id=None, arrival_at=start,
            start_at=start, end_at=from_seconds(brk.start + brk.duration, epoch))))
    ordered = [row for _, _, row in sorted(items, key=lambda i: (i[0], i[1]))]
    for sequence, row in enumerate(ordered):
        row.sequence = sequence
    return ordered


def _taken_out(visit_id: int, actor: str) -> m.UnassignedVisit:
    return m.UnassignedVisit(
        visit_id=visit_id, reason_code="removed_by_dispatcher", reason_params={"actor": actor},
        reason_zh=f"调度员 {actor} 将此工单移出了方案。",
        reason_en=f"Taken out of the plan by dispatcher {actor}.")


def _updated_kpis(session: Session, plan: m.Plan, cost: MoveCost) -> dict[str, object]:
    kpis = dict(plan.kpis or {})
    visit_stops = [s for s in plan.stops if s.kind == m.StopKind.VISIT]
    kpis["travel_time"] = max(0, int(kpis.get("travel_time", 0)) + cost.added_travel_seconds)
    kpis["overtime"] = max(0, int(kpis.get("overtime", 0)) + cost.added_overtime_seconds)
    kpis["lateness"] = max(0, int(kpis.get("lateness", 0)) + cost.added_lateness_seconds)
    kpis["visits_planned"] = len(visit_stops)
    kpis["visits_unassigned"] = len(plan.unassigned)
    kpis["technicians_used"] = len({s.technician_id for s in visit_stops})
    kpis["sla_at_risk"] = _sla_at_risk(session, visit_stops)
    kpis["edited_by_hand"] = True
    return kpis


def _sla_at_risk(session: Session, stops: Sequence[m.PlanStop]) -> int:
    deadlines = dict(session.execute(
        select(m.Visit.id, m.ServiceTicket.sla_deadline).join(m.ServiceTicket)
        .where(m.Visit.id.in_([s.visit_id for s in stops]))).all())
    return sum(1 for s in stops
               if deadlines.get(s.visit_id) is not None and s.start_at > deadlines[s.visit_id])


def copy_as_draft(session: Session, plan: m.Plan, actor: str) -> m.Plan:
    """A new draft of the outlet-day holding the same routes as ``plan`` (flushed)."""
    number = (session.scalar(select(func.max(m.Plan.number)).where(
        m.Plan.outlet_id == plan.outlet_id, m.Plan.day == plan.day)) or 0) + 1
    draft = m.Plan(
        outlet_id=plan.outlet_id, day=plan.day, number=number, status=m.PlanStatus.DRAFT,
        created_by=actor, kpis=dict(plan.kpis or {}), objective=dict(plan.objective or {}),
        solver_stats={"copied_from": plan.number}, input_digest=plan.input_digest)
    draft.stops = [m.PlanStop(
        technician_id=s.technician_id, sequence=s.sequence, kind=s.kind, visit_id=s.visit_id,
        arrival_at=s.arrival_at, start_at=s.start_at, end_at=s.end_at,
        waiting_seconds=s.waiting_seconds, travel_seconds=s.travel_seconds,
        travel_meters=s.travel_meters, late_seconds=s.late_seconds) for s in plan.stops]
    draft.unassigned = [m.UnassignedVisit(
        visit_id=u.visit_id, reason_code=u.reason_code, reason_params=dict(u.reason_params),
        reason_zh=u.reason_zh, reason_en=u.reason_en) for u in plan.unassigned]
    session.add(draft)
    db.flush(session)
    return draft


# ---------------------------------------------------------------------------------------------
# Pins
# ---------------------------------------------------------------------------------------------


def pin_visit(session: Session, visit_id: int, technician_id: int | None,
              start_range: tuple[datetime, datetime] | None, *, expected_version: int,
              actor: str) -> m.Visit:
    """Pin the visit to a technician and/or a start range for the next solves; both None unpins.

    Raises ``ConflictError`` when the visit is not at ``expected_version``.
    """
    visit = session.get(m.Visit, visit_id)
    if visit is None:
        raise NotFoundError("visit", visit_id, "工单")
    if visit.version != expected_version:
        raise ConflictError(detail=f"visit {visit.code} is at version {visit.version}, "
                                   f"not {expected_version}")
    if technician_id is not None:
        _check_technician(session, visit, technician_id)
    if start_range is not None:
        _check_range(visit, start_range)
    before = _pin_state(visit)
    visit.pinned_technician_id = technician_id
    visit.pinned_start_from, visit.pinned_start_to = start_range or (None, None)
    db.flush(session)
    pinned = technician_id is not None or start_range is not None
    session.add(m.AuditEvent(actor=actor, action="visit.pin" if pinned else "visit.unpin",
                             entity_type="visit", entity_id=visit.code, before=before,
                             after=_pin_state(visit)))
    db.flush(session)
    return visit


def _check_technician(session: Session, visit: m.Visit, technician_id: int) -> None:
    tech = session.get(m.Technician, technician_id)
    if tech is None or tech.outlet_id != visit.outlet_id or not tech.active:
        raise ValidationError(
            f"technician {technician_id} is not an active technician of the visit's outlet",
            f"技师 {technician_id} 不是该网点的在岗技师", field="technician_id", row=visit.code)


def _check_range(visit: m.Visit, start_range: tuple[datetime, datetime]) -> None:
    start, end = start_range
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValidationError("the pinned start range must end after it begins",
                              "锁定的开始时间段结束须晚于开始", field="start_range",
                              row=visit.code)


def _pin_state(visit: m.Visit) -> dict[str, object]:
    return {"technician_id": visit.pinned_technician_id,
            "start_from": visit.pinned_start_from.isoformat() if visit.pinned_start_from else None,
            "start_to": visit.pinned_start_to.isoformat() if visit.pinned_start_to else None,
            "version": visit.version}


# ---------------------------------------------------------------------------------------------
# Shared checks
# ---------------------------------------------------------------------------------------------


def _require_editable(plan: m.Plan) -> None:
    if plan.status == m.PlanStatus.SUPERSEDED:
        raise ValidationError(
            f"plan {plan.number} has been superseded; edit the current plan",
            f"方案 {plan.number} 已被取代，请在当前方案上调整", field="plan", row=plan.number)


def _check_version(plan: m.Plan, expected_version: int) -> None:
    if plan.version != expected_version:
        raise ConflictError(detail=f"plan {plan.id} is at version {plan.version}, "
                                   f"not {expected_version}")


def _visit_of(session: Session, plan: m.Plan, visit_id: int) -> m.Visit:
    visit = session.get(m.Visit, visit_id)
    if visit is None or visit.outlet_id != plan.outlet_id or visit.day != plan.day:
        raise NotFoundError("visit", visit_id, "工单")
    return visit

