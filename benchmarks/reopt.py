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
    then two workers, each on a fresh copy of the same planned and published day: the ratio of
    wall times (target about 0.5). Needs Redis (``--redis``; database 7 is flushed). The copies
    are PostgreSQL databases (``CREATE DATABASE ... TEMPLATE``, dropped after) on the server of
    ``--database-url``, by default the local one when it answers; SQLite files otherwise or with
    ``--sqlite`` (SQLite serialises the workers' writes). A round is timed from the call that
    sends the tasks (workers started and answering) to the last report.

The report goes to ``benchmarks/results/reopt-YYYYmmdd.md`` (``--out``) and the raw figures to
the same name with ``.json``. Wall-clock time limits: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from dispatch import db
from dispatch import models as m
from dispatch.timeutil import local_time_to_utc

RESULTS = Path(__file__).resolve().parent / "results"
TIMEZONE = "Asia/Shanghai"
PARTS = ("run", "emergency", "scale")
#: Part (c)'s Redis database: not a deployment's (0) nor one the fan-out tests use (8-15, one
#: per pytest-xdist worker), whose flushing and workers would take this benchmark's tasks.
BENCHMARK_REDIS = "redis://127.0.0.1:6379/7"
#: The PostgreSQL server part (c) uses when it answers and no other is given.
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


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


def cpu_seconds(sessions: Sequence[int] = ()) -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process and of the
    processes in ``sessions``, their finished children included); Linux only (zeros elsewhere).
    Their difference over a round is what other programs took from the machine meanwhile."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0, 0.0
    # Not idle, not iowait; guest time is already counted in user time.
    busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))
    ours = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            values = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(stat.parent.name) == os.getpid() or int(values[3]) in sessions:
            ours += sum(int(v) for v in values[11:15])  # utime, stime, cutime, cstime
    return busy / tick, ours / tick


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
    load_before = os.getloadavg()[0]
    procs = [spawn_worker(url, redis, name, log=folder / f"{name.split('@')[0]}.log")
             for name in names]
    app = make_celery(redis, url)
    engine = db.make_engine(url)
    try:
        if not wait_for_workers(app, names, 60):
            raise RuntimeError("the benchmark's workers did not start")
        runner = CeleryRunner(app, timeout=600 + 30 * time_limit)
        sessions = [proc.pid for proc in procs]  # each worker leads a session of its own
        cpu_before = cpu_seconds(sessions)
        # Workers are up and answering: only the job is timed, not their start.
        began = time.perf_counter()
        reports = reoptimize_all(db.session_factory(engine), day, now=now,
                                 params=SolveParams(time_limit=time_limit), runner=runner)
        wall = time.perf_counter() - began
        cpu_after = cpu_seconds(sessions)
        load_after = os.getloadavg()[0]
        strangers = set(runner.workers.values()) - set(names)
        if strangers:
            raise RuntimeError(f"workers not started here ran some runs ({', '.join(strangers)}):"
                               f" another program uses the Redis database {redis}")
    finally:
        engine.dispose()
        for proc in procs:
            stop_worker(proc)
        app.close()
    log(f"  {workers} worker(s): {wall:.1f} s for {len(reports)} outlets")
    return {"workers": workers, "wall_seconds": round(wall, 2),
            "statuses": sorted(r.status for r in reports),
            "run_seconds": [r.seconds for r in reports],
            "per_worker": {n: sum(1 for w in runner.workers.values() if w == n) for n in names},
            "busy_seconds": {n: round(sum(r.seconds for r in reports
                                          if runner.workers[r.outlet_id] == n), 2)
                             for n in names},
            "load_before": round(load_before, 2), "load_after": round(load_after, 2),
            "others_cpu_seconds": round((cpu_after[0] - cpu_before[0])
                                        - (cpu_after[1] - cpu_before[1]), 1)}


class SqliteCopies:
    """The rounds' databases as SQLite files in ``folder``, each a copy of the base file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = "SQLite, a file copy per round"

    def base(self) -> str:
        """The URL of the database to prepare the day on."""
        return f"sqlite:///{self.folder / 'metro.db'}"

    def copy(self, label: str) -> str:
        """The URL of a fresh copy of the base database."""
        copy = self.folder / f"metro-{label}.db"
        shutil.copyfile(self.folder / "metro.db", copy)
        return f"sqlite:///{copy}"

    def drop_all(self) -> None:
        """Nothing to do: the files go with the temporary folder."""


class PostgresCopies:
    """The rounds' databases on a PostgreSQL server: a base database, and per round a copy made
    by ``CREATE DATABASE ... TEMPLATE``; every one dropped at the end."""

    def __init__(self, server_url: str) -> None:
        server = make_url(server_url)
        if server.drivername == "postgresql":
            server = server.set(drivername="postgresql+psycopg")  # the driver installed here
        self.server = server
        self.prefix = f"reopt_bench_{os.getpid()}"
        self.created: list[str] = []
        self.admin = create_engine(server, isolation_level="AUTOCOMMIT",
                                   connect_args={"connect_timeout": 3})
        with self.admin.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
        self.description = (f"PostgreSQL {str(version).split()[0]} at "
                            f"{self.server.host}:{self.server.port or 5432}, a database per round "
                            "(CREATE DATABASE ... TEMPLATE of the planned day)")

    def base(self) -> str:
        """The URL of the database to prepare the day on."""
        return self._create(f"{self.prefix}_base")

    def copy(self, label: str) -> str:
        """The URL of a fresh copy of the base database."""
        return self._create(f"{self.prefix}_{label}", template=f"{self.prefix}_base")

    def drop_all(self) -> None:
        """Drop every database made here."""
        with self.admin.connect() as connection:
            for name in reversed(self.created):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()

    def _create(self, name: str, template: str | None = None) -> str:
        with self.admin.connect() as connection:
            clause = f' TEMPLATE "{template}"' if template else ""
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return self.server.set(database=name).render_as_string(hide_password=False)


def round_databases(args: argparse.Namespace, folder: Path) -> SqliteCopies | PostgresCopies:
    """PostgreSQL on ``--database-url``, or on the local server when it answers; SQLite files
    with ``--sqlite`` or when no server answers."""
    if args.sqlite:
        return SqliteCopies(folder)
    if args.database_url:
        return PostgresCopies(args.database_url)
    try:
        return PostgresCopies(LOCAL_POSTGRES)
    except Exception as exc:  # any failure to connect means "use SQLite"; said why
        log(f"PostgreSQL at {LOCAL_POSTGRES} does not answer ({type(exc).__name__}); SQLite")
        return SqliteCopies(folder)


def part_scale(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Part (c): the same `--all` on identical copies of the metro day, 1 then 2 workers."""
    databases = round_databases(args, folder)
    log(f"metro on {databases.description}")
    try:
        log("metro: loading, planning and publishing 10 outlets ...")
        prepare_metro(databases.base(), args.date, args.plan_time_limit)
        now = at(args.date, 10, 30)
        rounds = [fan_out_with(workers, databases.copy(f"{workers}w"), args.redis, args.date,
                               now, args.time_limit, folder)
                  for workers in (1, 2)]
    finally:
        databases.drop_all()
    return {"database": databases.description, "rounds": rounds,
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
                  f"Database / 数据库: {scale['database']}.", "",
                  "| workers | wall time (s) | runs per worker | busy s per worker | statuses "
                  "| load avg before, after | other programs' CPU s |",
                  "|---|---|---|---|---|---|---|"]
        for r in scale["rounds"]:
            lines.append(f"| {r['workers']} | {r['wall_seconds']:.1f} | "
                         f"{', '.join(str(v) for v in r['per_worker'].values())} | "
                         f"{', '.join(f'{v:.1f}' for v in r['busy_seconds'].values())} | "
                         f"{', '.join(sorted(set(r['statuses'])))} | "
                         f"{r['load_before']:.2f}, {r['load_after']:.2f} | "
                         f"{r['others_cpu_seconds']:.1f} |")
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
    parser.add_argument("--redis", default=BENCHMARK_REDIS,
                        help="part scale: the Redis database for the tasks (flushed)")
    parser.add_argument("--database-url", default=None, metavar="URL",
                        help="part scale: the PostgreSQL server to make the rounds' databases "
                             f"on (default: {LOCAL_POSTGRES} when it answers, else SQLite)")
    parser.add_argument("--sqlite", action="store_true",
                        help="part scale: SQLite file copies even when PostgreSQL answers")
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
