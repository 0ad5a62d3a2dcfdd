"""Plans: start a background solve (202), poll it, stop it; read, list and publish plans."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from dispatch import db as dispatch_db
from dispatch import models as m
from dispatch import solvejobs
from dispatch.errors import NotFoundError
from dispatch.planning import publish_plan
from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import body, local, query
from web.api.errors import language
from web.api.spec import responses, spec
from web.api.tokens import DISPATCH_ROLES, actor, api_roles
from web.extensions import db

TAGS = ["plans"]


@bp.post("/plans/solve")
@api_roles(*DISPATCH_ROLES)
@spec.validate(json=s.SolveStart, resp=responses(202, s.JobOut, 404, 422), tags=TAGS)
def start_solve() -> Any:
    """开始求解 / Start solving an outlet-day in the background; answers 202 with the job."""
    data: s.SolveStart = body(s.SolveStart)
    session = db()
    outlet = m.find_outlet(session, data.outlet)
    config = current_app.config
    job_id = solvejobs.start_solve(
        current_app.extensions["dispatch_sessions"], outlet.id, data.date, started_by=actor(),
        time_limit=data.time_limit, params=config.get("API_SOLVE_PARAMS"),
        background=config.get("API_SOLVE_IN_BACKGROUND", True))
    session.expire_all()
    return _job(job_id), 202


@bp.get("/plans/solve/<int:job_id>")
@api_roles(*DISPATCH_ROLES)
@spec.validate(resp=responses(200, s.JobOut, 404), tags=TAGS)
def poll_solve(job_id: int) -> Any:
    """求解进度 / A solve job's status and progress."""
    return _job(job_id)


@bp.post("/plans/solve/<int:job_id>/stop")
@api_roles(*DISPATCH_ROLES)
@spec.validate(resp=responses(200, s.JobOut, 404), tags=TAGS)
def stop_solve(job_id: int) -> Any:
    """停止求解 / Ask a solve job to stop (the best plan found so far is kept)."""
    session = db()
    solvejobs.request_stop(session, job_id)
    dispatch_db.commit(session)
    return _job(job_id)


@bp.get("/plans")
@api_roles(*DISPATCH_ROLES)
@spec.validate(query=s.PlanQuery, resp=responses(200, s.PlanList, 404, 422), tags=TAGS)
def list_plans() -> Any:
    """方案列表 / The plan versions of an outlet-day, newest first."""
    args: s.PlanQuery = query(s.PlanQuery)
    session = db()
    outlet = m.find_outlet(session, args.outlet)
    plans = session.scalars(select(m.Plan).where(m.Plan.outlet_id == outlet.id,
                                                 m.Plan.day == args.date)
                            .order_by(m.Plan.number.desc()))
    return s.PlanList(outlet=outlet.code, day=args.date, items=[
        s.PlanBrief(id=p.id, number=p.number, status=str(p.status), version=p.version,
                    created_at=local(p.created_at, outlet)) for p in plans])


@bp.get("/plans/<int:plan_id>")
@api_roles(*DISPATCH_ROLES)
@spec.validate(resp=responses(200, s.PlanOut, 404), tags=TAGS)
def get_plan(plan_id: int) -> Any:
    """方案详情 / A plan with its KPIs, stops and unassigned visits."""
    return _plan(_plan_by_id(plan_id))


@bp.post("/plans/<int:plan_id>/publish")
@api_roles(*DISPATCH_ROLES)
@spec.validate(json=s.Publish, resp=responses(200, s.PlanOut, 404, 409, 422), tags=TAGS)
def publish(plan_id: int) -> Any:
    """发布方案 / Publish the plan as read; a stale version answers 409."""
    data: s.Publish = body(s.Publish)
    session = db()
    plan = publish_plan(session, _plan_by_id(plan_id), data.expected_version, actor=actor())
    dispatch_db.commit(session)
    return _plan(plan)


def _job(job_id: int) -> s.JobOut:
    view = solvejobs.job_view(solvejobs.job_status(db(), job_id), language())
    return s.JobOut(**view)


def _plan_by_id(plan_id: int) -> m.Plan:
    plan = db().get(m.Plan, plan_id)
    if plan is None:
        raise NotFoundError("plan", plan_id, "方案")
    return plan


def _plan(plan: m.Plan) -> s.PlanOut:
    outlet = plan.outlet
    lang = language()
    stops = [s.StopOut(technician_id=st.technician_id, sequence=st.sequence, kind=str(st.kind),
                       visit_id=st.visit_id, arrival_at=local(st.arrival_at, outlet),
                       start_at=local(st.start_at, outlet), end_at=local(st.end_at, outlet),
                       late_seconds=st.late_seconds)
             for st in sorted(plan.stops, key=lambda x: (x.technician_id, x.sequence))]
    unassigned = [s.UnassignedOut(visit_id=u.visit_id, reason_code=u.reason_code,
                                  reason=u.reason_zh if lang == "zh" else u.reason_en)
                  for u in plan.unassigned]
    return s.PlanOut(id=plan.id, outlet=outlet.code, day=plan.day, number=plan.number,
                     status=str(plan.status), version=plan.version, created_by=plan.created_by,
                     created_at=local(plan.created_at, outlet),
                     published_at=local(plan.published_at, outlet), kpis=dict(plan.kpis or {}),
                     stops=stops, unassigned=unassigned)
