"""Re-optimization benchmark: how fast one run is, whether an emergency gets in, how `--all` scales.

```
.venv/bin/python -m benchmarks.reopt                    # all three parts
.venv/bin/python -m benchmarks.reopt --parts run,emergency --time-limit 5
```

(a) ``run``: the qingdao day replayed by the simulator up to 10:30 (technicians following the
    morning plan, with its disturbances), then one re-optimization run of each outlet-day at
    10:30: seconds per run (target < 10 s) and what the run did.
(b) ``emergency``: a priority-4 repair booked at 10:35 in each outlet; one run at 10:36: is the
    emergency in the published plan (target: yes, within one run)?
(c) ``scale``: ``--all`` on the metro day (10 outlets) through Celery on Redis with one worker,
    then two workers, each on a fresh copy of the same database: the ratio of wall times
    (target about 0.5). Needs Redis (``--redis``; database 14 is flushed).

The report goes to ``benchmarks/results/reopt-YYYYmmdd.md`` (``--out``) and the raw figures to
the same name with ``.json``. Wall-clock time limits: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dispatch import db
from dispatch import models as m
from dispatch.timeutil import local_time_to_utc

RESULTS = Path(__file__).resolve().parent / "results"
TIMEZONE = "Asia/Shanghai"
PARTS = ("run", "emergency", "scale")


def log(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


def at(day: date, hour: int, minute: int) -> datetime:
    """A local clock time of ``day`` in Qingdao, as UTC."""
    return local_time_to_utc(day, clock(hour, minute), TIMEZONE)


# ---------------------------------------------------------------------------------------------
# (a) one run per qingdao outlet-day, (b) an emergency
# ---------------------------------------------------------------------------------------------


def replay_morning(url: str, day: date, seed: int, plan_time_limit: float) -> None:
    """The qingdao day on ``url`` as it stands at 10:30: planned, published, and replayed by the
    simulator (the job only at 08:00)."""
    from dispatch.simulate import SimulationSettings, simulate

    settings = SimulationSettings(dataset="qingdao", day=day, seed=seed, every_minutes=10_000,
                                  end=clock(10, 30), plan_time_limit=plan_time_limit)
    simulate(settings, url)


def outlets(url: str) -> list[tuple[int, str]]:
    """(id, code) of every outlet."""
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as session:
            return [(o.id, o.code) for o in session.scalars(select(m.Outlet)
                                                             .order_by(m.Outlet.code))]
    finally:
        engine.dispose()


def run_each(url: str, day: date, now: datetime, time_limit: float) -> list[dict[str, Any]]:
    """One re-optimization run of each outlet-day at ``now``."""
    from dispatch.reoptimize import run_reoptimization
    from solver import SolveParams

    engine = db.make_engine(url)
    rows = []
    try:
        factory = db.session_factory(engine)
        for outlet_id, code in outlets(url):
            report = run_reoptimization(factory, outlet_id, day, now=now,
                                        params=SolveParams(time_limit=time_limit),
                                        actor="benchmark")
            log(f"  run {code}: {report.status} in {report.seconds:.2f} s")
            rows.append({"outlet": code, "status": report.status, "seconds": report.seconds,
                         "moved": len(report.moved_visits), "plan": report.plan_number})
    finally:
        engine.dispose()
    return rows


def book_emergencies(url: str, booked: datetime) -> dict[str, int]:
    """A priority-4 repair per outlet for a known customer, booked at ``booked``; outlet code ->
    visit id."""
    from dispatch.booking import RequestData, create_request

    engine = db.make_engine(url)
    visits = {}
    try:
        with db.session_scope(engine) as session:
            for outlet in session.scalars(select(m.Outlet).order_by(m.Outlet.code)):
                ticket = session.scalars(
                    select(m.ServiceTicket).where(m.ServiceTicket.outlet_id == outlet.id,
                                                  m.ServiceTicket.product_id.is_not(None))
                    .order_by(m.ServiceTicket.code)).first()
                assert ticket is not None
                visit = create_request(session, outlet, ticket.customer, ticket.product,
                                       RequestData(kind="repair", priority=4,
                                                   symptom="紧急 / urgent"),
                                       actor="benchmark", now=booked)
                visit.windows.append(m.VisitWindow(starts_at=booked,
                                                   ends_at=booked + timedelta(hours=4)))
                db.flush(session)
                visits[outlet.code] = visit.id
    finally:
        engine.dispose()
    return visits


def in_published_plan(url: str, day: date, visits: dict[str, int]) -> dict[str, bool]:
    """Whether each visit is a stop of its outlet's published plan."""
    from dispatch.planning import current_plan

    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as session:
            found = {}
            for code, visit_id in visits.items():
                outlet = session.scalar(select(m.Outlet).where(m.Outlet.code == code))
                assert outlet is not None
                plan = current_plan(session, outlet.id, day)
                found[code] = plan is not None and any(s.visit_id == visit_id
                                                       for s in plan.stops)
            return found
    finally:
        engine.dispose()


def part_run_and_emergency(args: argparse.Namespace, folder: Path,
                           parts: set[str]) -> dict[str, Any]:
    """Parts (a) and (b) on one replayed qingdao morning."""
    url = f"sqlite:///{folder / 'qingdao.db'}"
    log("qingdao: planning and replaying the morning to 10:30 ...")
    replay_morning(url, args.date, args.seed, args.plan_time_limit)
    out: dict[str, Any] = {}
    if "run" in parts:
        out["runs"] = run_each(url, args.date, at(args.date, 10, 30), args.time_limit)
    if "emergency" in parts:
        visits = book_emergencies(url, at(args.date, 10, 35))
        out["emergency_runs"] = run_each(url, args.date, at(args.date, 10, 36), args.time_limit)
        out["emergency_in_plan"] = in_published_plan(url, args.date, visits)
    return out


# ---------------------------------------------------------------------------------------------
# (c) --all on metro with one and two workers
# ---------------------------------------------------------------------------------------------


def prepare_metro(url: str, day: date, plan_time_limit: float) -> None:
    """The metro day loaded, planned and published on ``url``."""
    from dispatch.demo import prepare_demo
    from solver import SolveParams

    prepare_demo(url, "metro", day, params=SolveParams(time_limit=plan_time_limit))


def fan_out_with(workers: int, url: str, redis: str, day: date, now: datetime,
                 time_limit: float, folder: Path) -> dict[str, Any]:
    """`--all` through ``workers`` fresh workers; the wall time and each run's worker."""
    import redis as redis_client

    from dispatch.celery_app import make_celery
    from dispatch.fanout import CeleryRunner, spawn_worker, stop_worker, wait_for_workers
    from dispatch.reoptimize import reoptimize_all
    from solver import SolveParams

    redis_client.Redis.from_url(redis).flushdb()
    names = [f"bench-{workers}-{i}@reopt" for i in range(workers)]
    procs = [spawn_worker(url, redis, name, log=folder / f"{name.split('@')[0]}.log")
             for name in names]
    app = make_celery(redis, url)
    engine = db.make_engine(url)
    try:
        if not wait_for_workers(app, names, 60):
            raise RuntimeError("the benchmark's workers did not start")
        runner = CeleryRunner(app, timeout=3600)
        began = time.perf_counter()
        reports = reoptimize_all(db.session_factory(engine), day, now=now,
                                 params=SolveParams(time_limit=time_limit), runner=runner)
        wall = time.perf_counter() - began
    finally:
        engine.dispose()
        for proc in procs:
            stop_worker(proc)
        app.close()
    log(f"  {workers} worker(s): {wall:.1f} s for {len(reports)} outlets")
    return {"workers": workers, "wall_seconds": round(wall, 2),
            "statuses": sorted(r.status for r in reports),
            "run_seconds": [r.seconds for r in reports],
            "per_worker": {n: sum(1 for w in runner.workers.values() if w == n) for n in names}}


def part_scale(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Part (c): the same `--all` on identical copies of the metro day, 1 then 2 workers."""
    base = folder / "metro.db"
    log("metro: loading, planning and publishing 10 outlets ...")
    prepare_metro(f"sqlite:///{base}", args.date, args.plan_time_limit)
    now = at(args.date, 10, 30)
    rounds = []
    for workers in (1, 2):
        copy = folder / f"metro-{workers}.db"
        shutil.copyfile(base, copy)
        rounds.append(fan_out_with(workers, f"sqlite:///{copy}", args.redis, args.date, now,
                                   args.time_limit, folder))
    return {"rounds": rounds,
            "ratio": round(rounds[1]["wall_seconds"] / rounds[0]["wall_seconds"], 3)}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def markdown(args: argparse.Namespace, results: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    lines = [f"# Re-optimization benchmark / 重新优化基准 ({datetime.now():%Y-%m-%d})", "",
             f"Day {args.date}, seed {args.seed}, job time limit {args.time_limit:g} s, "
             f"morning plan {args.plan_time_limit:g} s per outlet; {_machine()}.", ""]
    runs = results.get("runs")
    if runs:
        seconds = [r["seconds"] for r in runs]
        lines += ["## (a) One run per qingdao outlet-day at 10:30 / 每个网点一次运行",
                  "", "| outlet | status | seconds | visits moved |", "|---|---|---|---|"]
        lines += [f"| {r['outlet']} | {r['status']} | {r['seconds']:.2f} | {r['moved']} |"
                  for r in runs]
        lines += ["", f"Median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
                      f"(target < 10 s: {'met' if max(seconds) < 10 else 'NOT met'}).", ""]
    found = results.get("emergency_in_plan")
    if found is not None:
        lines += ["## (b) Emergency booked at 10:35, one run at 10:36 / 紧急维修一次运行后入方案",
                  "", "| outlet | in the published plan | run status | seconds |",
                  "|---|---|---|---|"]
        by_outlet = {r["outlet"]: r for r in results["emergency_runs"]}
        lines += [f"| {code} | {'yes' if ok else 'no'} | {by_outlet[code]['status']} | "
                  f"{by_outlet[code]['seconds']:.2f} |" for code, ok in found.items()]
        lines.append("")
    scale = results.get("scale")
    if scale:
        lines += ["## (c) `--all` on metro: one worker vs two / 一个与两个工作进程", "",
                  "| workers | wall time (s) | runs per worker | statuses |", "|---|---|---|---|"]
        for r in scale["rounds"]:
            lines.append(f"| {r['workers']} | {r['wall_seconds']:.1f} | "
                         f"{', '.join(str(v) for v in r['per_worker'].values())} | "
                         f"{', '.join(sorted(set(r['statuses'])))} |")
        lines += ["", f"Ratio two/one: **{scale['ratio']:.2f}** (target about 0.5).", ""]
    return "\n".join(lines)


def _machine() -> str:
    import os
    import platform

    return f"{os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 3, 10))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=5.0,
                        help="the job's solve time per run (s)")
    parser.add_argument("--plan-time-limit", type=float, default=5.0,
                        help="the morning plan's solve time per outlet (s)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="reopt-bench-") as name:
        folder = Path(name)
        if parts & {"run", "emergency"}:
            results.update(part_run_and_emergency(args, folder, parts))
        if "scale" in parts:
            results["scale"] = part_scale(args, folder)
    out = args.out or RESULTS / f"reopt-{datetime.now():%Y%m%d}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(args, results)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n",
                                        encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
