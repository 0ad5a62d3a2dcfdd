"""A planned tiny outlet-day for the board's tests (edits, solve jobs, pages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

import fixtures
from dispatch import models as m
from dispatch.loader import load_dataset
from dispatch.planning import plan_day
from solver import SolveParams

DAY = date(2025, 3, 10)
PARAMS = SolveParams(time_limit=None, solution_limit=10, workers=1, seed=0, use_pyvrp=False)


@dataclass
class PlannedDay:
    """The tiny dataset loaded and planned: its outlet, a draft plan and its technicians."""

    outlet: m.Outlet
    plan: m.Plan
    technicians: list[m.Technician]

    def route(self, technician_id: int) -> list[int]:
        """Visit ids of a technician's route in the plan, in order."""
        return [s.visit_id for s in sorted(self.plan.stops, key=lambda s: s.sequence)
                if s.technician_id == technician_id and s.kind == m.StopKind.VISIT
                and s.visit_id is not None]

    def busiest(self) -> tuple[int, int]:
        """(technician id, first visit id) of the technician with the most visits."""
        tech = max(self.technicians, key=lambda t: (len(self.route(t.id)), -t.id))
        return tech.id, self.route(tech.id)[0]


def plan_tiny(session: Session) -> PlannedDay:
    """Load the tiny dataset for DAY, plan it (deterministic) and commit; the plan is a draft."""
    dataset = fixtures.generate("tiny", DAY, 0)
    load_dataset(session, dataset)
    outlet = session.scalars(select(m.Outlet).where(m.Outlet.code == dataset.outlets[0].code)).one()
    plan = plan_day(session, outlet, DAY, params=PARAMS, created_by="test")
    session.commit()
    techs = list(session.scalars(select(m.Technician).where(m.Technician.outlet_id == outlet.id)
                                 .order_by(m.Technician.code)))
    return PlannedDay(outlet, plan, techs)
