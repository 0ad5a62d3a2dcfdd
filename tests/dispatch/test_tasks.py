"""Tasks derived from a published plan: re-confirmation, delay, consent, handover, follow-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import fixtures
from dispatch import cli, db
from dispatch import models as m
from dispatch.calling import is_callable_at
from dispatch.confirmation import agree_handover, confirm
from dispatch.errors import ValidationError
from dispatch.loader import load_dataset
from dispatch.planning import plan_day, publish_plan
from dispatch.tasks import CALL_KINDS, derive_tasks, tasks_for_day
from solver import SolveParams
from tests.dispatch.builders import DAY, Graph, build_graph, local

K = m.TaskKind
EVE = DAY - timedelta(days=1)
NOON_BEFORE = local(12, day=EVE)


def published(session: Session, start_hour: int = 9, tz: str | None = None) -> Graph:
    """The builder graph with its single stop moved to ``start_hour`` and the plan published."""
    graph = build_graph(session)
    if tz is not None:
        graph.outlet.timezone = tz
    stop = graph.plan.stops[0]
    stop.arrival_at = stop.start_at = local(start_hour)
    stop.end_at = local(start_hour + 1)
    publish_plan(session, graph.plan, graph.plan.version, now=NOON_BEFORE)
    return graph


def by_kind(tasks: list[m.Task], kind: m.TaskKind) -> list[m.Task]:
    """The tasks of one kind."""
    return [t for t in tasks if t.kind == kind]


def test_early_visit_is_reconfirmed_the_afternoon_before(session: Session) -> None:
    """A visit at 09:00 (set-off 08:50) gets its call the previous day from 15:00."""
    graph = published(session, 9)
    [task] = by_kind(derive_tasks(session, graph.plan, now=NOON_BEFORE), K.RECONFIRM_CALL)
    assert (task.due_from, task.due_by) == (local(15, day=EVE), local(19, 57, day=EVE))
    assert not task.flagged and task.technician_id == graph.technician.id


def test_later_visit_is_reconfirmed_on_the_day(session: Session) -> None:
    """A visit at 15:00 (set-off 14:50) is re-confirmed on the day, from 10:00 until set-off."""
    graph = published(session, 15)
    [task] = by_kind(derive_tasks(session, graph.plan, now=NOON_BEFORE), K.RECONFIRM_CALL)
    assert (task.due_from, task.due_by) == (local(10), local(14, 47))


def test_reconfirmation_too_late_is_flagged(session: Session) -> None:
    """Derived at 21:00 the evening before, an 09:00 visit's call cannot be made: flagged."""
    graph = published(session, 9)
    [task] = by_kind(derive_tasks(session, graph.plan, now=local(21, day=EVE)), K.RECONFIRM_CALL)
    assert task.flagged and "calling hours" in task.flag_reason and "通话" in task.flag_reason


def test_no_delay_notice_when_on_time(session: Session) -> None:
    """A visit planned inside its window gets no delay notice."""
    graph = published(session, 10)
    assert by_kind(derive_tasks(session, graph.plan, now=NOON_BEFORE), K.DELAY_NOTICE) == []


def test_delay_notice_when_planned_after_the_agreed_window(session: Session) -> None:
    """Planned at 16:00 for an agreed 13:30-15:00: a notice due by 13:15 with the new time."""
    graph = build_graph(session)
    confirm(session, graph.visit, (local(13, 30), local(15)), "disp1", graph.technician)
    stop = graph.plan.stops[0]
    stop.start_at, stop.end_at = local(16), local(17)
    stop.arrival_at = local(16)
    publish_plan(session, graph.plan, graph.plan.version)
    tasks = derive_tasks(session, graph.plan, now=local(11))
    [task] = by_kind(tasks, K.DELAY_NOTICE)
    assert (task.due_from, task.due_by) == (local(11), local(11, 57))
    assert task.payload["new_arrival_local"] == "16:00" and task.payload["late_minutes"] == 60
    assert by_kind(tasks, K.CONSENT_REQUEST)[0].payload["reasons"] == ["time_changed"]


def test_delay_notice_too_late_is_flagged(session: Session) -> None:
    """Derived after 13:15 for a 13:30 agreed start, the delay notice is flagged."""
    graph = build_graph(session)
    confirm(session, graph.visit, (local(13, 30), local(15)), "disp1", graph.technician)
    stop = graph.plan.stops[0]
    stop.start_at, stop.end_at = local(16), local(17)
    stop.arrival_at = local(16)
    publish_plan(session, graph.plan, graph.plan.version)
    [task] = by_kind(derive_tasks(session, graph.plan, now=local(13, 20)), K.DELAY_NOTICE)
    assert task.flagged and task.due_by == local(13, 15)


def add_technician(session: Session, graph: Graph) -> m.Technician:
    """A second technician of the graph's outlet."""
    other = m.Technician(code="T02", outlet=graph.outlet, name="张师傅", home_lat=36.0,
                         home_lon=120.3)
    session.add(other)
    session.flush()
    return other


def test_other_technician_needs_consent_and_handover_notice(session: Session) -> None:
    """A confirmed visit planned for another technician asks consent (with alternatives) and
    tells the customer who comes instead."""
    graph = build_graph(session)
    other = add_technician(session, graph)
    confirm(session, graph.visit, (local(9), local(11)), "disp1", other)
    publish_plan(session, graph.plan, graph.plan.version)
    tasks = derive_tasks(session, graph.plan, now=NOON_BEFORE)
    [consent] = by_kind(tasks, K.CONSENT_REQUEST)
    assert consent.payload["reasons"] == ["technician_changed"]
    assert 1 <= len(consent.payload["alternatives"]) <= 3
    [handover] = by_kind(tasks, K.HANDOVER_NOTICE)
    assert handover.payload["new_technician"] == "王师傅"
    assert handover.payload["old_technician"] == "张师傅"


def test_agreed_handover_needs_no_consent(session: Session) -> None:
    """Once the customer agreed to a handover, only the handover notice remains."""
    graph = build_graph(session)
    other = add_technician(session, graph)
    confirm(session, graph.visit, (local(9), local(11)), "disp1", other)
    agree_handover(session, graph.visit, "disp1")
    publish_plan(session, graph.plan, graph.plan.version)
    tasks = derive_tasks(session, graph.plan, now=NOON_BEFORE)
    assert by_kind(tasks, K.CONSENT_REQUEST) == []
    assert len(by_kind(tasks, K.HANDOVER_NOTICE)) == 1


def test_follow_up_the_day_after_completion(session: Session) -> None:
    """A visit done on the day gets a follow-up call the next day in calling hours."""
    graph = published(session, 9)
    graph.visit.status = m.VisitStatus.DONE
    graph.visit.actual_end = local(10)
    tasks = derive_tasks(session, graph.plan, now=local(18))
    [task] = by_kind(tasks, K.FOLLOWUP_CALL)
    after = DAY + timedelta(days=1)
    assert (task.due_from, task.due_by) == (local(10, day=after), local(19, 57, day=after))
    assert by_kind(tasks, K.RECONFIRM_CALL) == []


def test_deriving_twice_creates_nothing_new(session: Session) -> None:
    """A second derivation returns the same tasks and adds no rows."""
    graph = published(session, 9)
    first = derive_tasks(session, graph.plan, now=NOON_BEFORE)
    second = derive_tasks(session, graph.plan, now=NOON_BEFORE)
    assert [t.id for t in first] == [t.id for t in second]
    assert session.scalar(select(func.count()).select_from(m.Task)) == len(first)


def test_new_plan_cancels_stale_tasks(session: Session) -> None:
    """When a newer plan moves the visit, the old re-confirmation call is cancelled."""
    graph = published(session, 15)
    [old] = by_kind(derive_tasks(session, graph.plan, now=NOON_BEFORE), K.RECONFIRM_CALL)
    newer = m.Plan(outlet=graph.outlet, day=DAY, number=2, created_by="job", stops=[m.PlanStop(
        technician=graph.technician, sequence=0, kind=m.StopKind.VISIT, visit=graph.visit,
        arrival_at=local(16), start_at=local(16), end_at=local(17))])
    session.add(newer)
    session.flush()
    publish_plan(session, newer, newer.version)
    [new] = by_kind(derive_tasks(session, newer, now=NOON_BEFORE), K.RECONFIRM_CALL)
    assert old.status == m.TaskStatus.CANCELLED and new.status == m.TaskStatus.OPEN
    assert new.id != old.id


def test_unpublished_plan_is_refused(session: Session) -> None:
    """Tasks come only from a published plan."""
    graph = build_graph(session)
    with pytest.raises(ValidationError, match="publish"):
        derive_tasks(session, graph.plan, now=NOON_BEFORE)


def test_tasks_for_day_lists_the_day(session: Session) -> None:
    """tasks_for_day gives the tasks whose due window touches the day, and not the next day's."""
    graph = published(session, 15)
    derive_tasks(session, graph.plan, now=NOON_BEFORE)
    assert len(tasks_for_day(session, "QD01", DAY)) == 1
    assert tasks_for_day(session, graph.outlet, DAY + timedelta(days=1)) == []


def test_dst_outlet_early_visit_called_the_day_before(session: Session) -> None:
    """In Europe/Berlin a 08:30 visit on the spring-forward day (2025-03-30) is re-confirmed
    from 15:00 CET on 29 March (14:00 UTC), until 19:57 CET."""
    berlin = ZoneInfo("Europe/Berlin")
    graph = build_graph(session)
    graph.outlet.timezone = "Europe/Berlin"
    change = date(2025, 3, 30)
    graph.visit.day = change
    stop = graph.plan.stops[0]
    graph.plan.day = change
    stop.arrival_at = stop.start_at = datetime.combine(change, time(8, 30), tzinfo=berlin)
    stop.end_at = stop.start_at + timedelta(hours=1)
    publish_plan(session, graph.plan, graph.plan.version)
    now = datetime(2025, 3, 29, 8, 0, tzinfo=UTC)
    [task] = by_kind(derive_tasks(session, graph.plan, now=now), K.RECONFIRM_CALL)
    assert task.due_from == datetime(2025, 3, 29, 14, 0, tzinfo=UTC)
    assert task.due_by == datetime(2025, 3, 29, 18, 57, tzinfo=UTC)


def test_tasks_command_lists_the_day(engine: Engine, db_url: str) -> None:
    """`dispatch tasks --outlet X --date D --derive` derives and lists the day's calls."""
    with Session(engine) as session:
        published(session, 15)
        session.commit()
    result = CliRunner().invoke(cli.main, ["--database-url", db_url, "tasks", "--outlet", "QD01",
                                           "--date", DAY.isoformat(), "--derive"])
    assert result.exit_code == 0, result.output
    assert "V01" in result.output and "re-confirmation call" in result.output


# ---------------------------------------------------------------------------------------------
# The qingdao demo day
# ---------------------------------------------------------------------------------------------

QINGDAO_DAY = date(2025, 3, 11)


@pytest.fixture(scope="module")
def qingdao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, list[int]]]:
    """The qingdao dataset on SQLite, one outlet planned (short deterministic solve) and
    published, tasks derived at noon the day before; yields the engine and task ids."""
    path: Path = tmp_path_factory.mktemp("qingdao") / "q.db"
    engine = db.make_engine(f"sqlite:///{path}")
    m.Base.metadata.create_all(engine)
    now = datetime(2025, 3, 10, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
    with db.session_scope(engine) as session:
        load_dataset(session, fixtures.generate("qingdao", QINGDAO_DAY))
        plan = plan_day(session, "QD-HD", QINGDAO_DAY, params=SolveParams(
            time_limit=None, solution_limit=50, use_pyvrp=False))
        publish_plan(session, plan, plan.version)
        ids = [t.id for t in derive_tasks(session, plan, now=now)]
    yield engine, ids
    engine.dispose()


def test_qingdao_calls_fall_inside_calling_hours(qingdao: tuple[Engine, list[int]]) -> None:
    """Every unflagged call of the qingdao day starts and ends inside calling hours; flagged
    ones carry a reason; every planned visit has its re-confirmation call."""
    engine, ids = qingdao
    with Session(engine) as session:
        tasks = session.scalars(select(m.Task).where(m.Task.id.in_(ids))).all()
        assert len(tasks) > 10
        for task in tasks:
            assert task.kind in CALL_KINDS
            customer = task.visit.ticket.customer
            if task.flagged:
                assert task.flag_reason
                continue
            assert is_callable_at(task.outlet, customer, task.due_from), task.idempotency_key
            assert is_callable_at(task.outlet, customer, task.due_by), task.idempotency_key
        planned = session.scalar(select(func.count()).select_from(m.PlanStop).where(
            m.PlanStop.kind == m.StopKind.VISIT))
        assert len([t for t in tasks if t.kind == K.RECONFIRM_CALL]) == planned
