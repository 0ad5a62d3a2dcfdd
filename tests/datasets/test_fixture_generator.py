"""The generator keeps its promises: deterministic, on land, feasible skills, realistic mix."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest
from global_land_mask import globe

import fixtures
from fixtures import Dataset, generate
from fixtures import geography as geo
from fixtures.generator import can_do
from tests.datasets.conftest import DAY, dataset

# name: (outlets, technicians on the roster (range), visits)
PROMISED = {"tiny": (1, (3, 3), 12), "qingdao": (3, (28, 36), 250), "metro": (10, (190, 235), 2000)}


def working_technicians(ds: Dataset) -> list[fixtures.Technician]:
    """Active technicians who are not absent on the dataset's day."""
    absent = {s.technician_code for s in ds.shifts if s.absent}
    return [t for t in ds.technicians if t.active and t.code not in absent]


def all_points(ds: Dataset) -> list[tuple[str, float, float]]:
    """Every coordinate in the dataset, labelled by what it belongs to."""
    return ([(o.code, o.lat, o.lon) for o in ds.outlets]
            + [(t.code, t.home_lat, t.home_lon) for t in ds.technicians]
            + [(c.code, c.lat, c.lon) for c in ds.customers])


# ----- determinism -----------------------------------------------------------------------------

def test_same_name_day_seed_gives_identical_dataset() -> None:
    """Generating twice with the same (name, day, seed) gives equal datasets."""
    assert generate("qingdao", DAY, 7) == generate("qingdao", DAY, 7)


@pytest.mark.parametrize("name", ["tiny", "qingdao"])
def test_other_seed_gives_other_dataset(name: str) -> None:
    """Another seed changes the people and the visits."""
    a, b = dataset(name, DAY, 0), dataset(name, DAY, 1)
    assert [c.name for c in a.customers] != [c.name for c in b.customers]
    assert [v.windows for v in a.visits] != [v.windows for v in b.visits]


def test_dates_follow_the_requested_day() -> None:
    """Another day moves every visit and shift to that day and keeps the same people."""
    later = date(2026, 7, 1)
    a, b = dataset("tiny"), dataset("tiny", later)
    assert {v.day for v in b.visits} == {later}
    assert {s.day for s in b.shifts} == {later}
    assert all(w.date() == later for v in b.visits for window in v.windows for w in window)
    assert [t.name for t in a.technicians] == [t.name for t in b.technicians]
    assert [v.duration_minutes for v in a.visits] == [v.duration_minutes for v in b.visits]


def test_unknown_dataset_is_refused() -> None:
    """An unknown name raises ValueError listing the known ones."""
    with pytest.raises(ValueError, match="tiny, qingdao, metro"):
        generate("atlantis", DAY)


# ----- promises about size and identity --------------------------------------------------------

def test_counts_match_the_promise(any_dataset: Dataset) -> None:
    """Outlets, technicians and visits are as many as the dataset promises; one ticket,
    customer and product per visit."""
    outlets, (low, high), visits = PROMISED[any_dataset.name]
    assert len(any_dataset.outlets) == outlets
    assert low <= len(any_dataset.technicians) <= high
    assert len(any_dataset.visits) == visits
    assert len(any_dataset.tickets) == len(any_dataset.customers) == visits
    assert len(any_dataset.products) == visits


def test_qingdao_has_about_thirty_working_technicians(qingdao: Dataset) -> None:
    """About 30 technicians work on the demo day (one or two are absent)."""
    assert 28 <= len(working_technicians(qingdao)) <= 34
    assert 1 <= sum(s.absent for s in qingdao.shifts) <= 2


def test_codes_are_unique(any_dataset: Dataset) -> None:
    """Codes, serials and usernames are unique within their kind."""
    ds = any_dataset
    for values in ([s.code for s in ds.skills], [o.code for o in ds.outlets],
                   [t.code for t in ds.technicians], [c.code for c in ds.customers],
                   [p.serial for p in ds.products], [t.code for t in ds.tickets],
                   [v.code for v in ds.visits], [u.username for u in ds.users]):
        assert len(values) == len(set(values))


def test_references_resolve(any_dataset: Dataset) -> None:
    """Every code a record refers to exists, and skills named anywhere are known skills."""
    ds = any_dataset
    skills = {s.code for s in ds.skills}
    outlets = {o.code for o in ds.outlets}
    techs = {t.code for t in ds.technicians}
    customers = {c.code for c in ds.customers}
    products = {p.serial: p for p in ds.products}
    tickets = {t.code: t for t in ds.tickets}
    assert all(t.outlet_code in outlets and {s for s, _ in t.skills} <= skills
               for t in ds.technicians)
    assert all(s.technician_code in techs for s in ds.shifts)
    assert all(p.customer_code in customers for p in ds.products)
    for ticket in ds.tickets:
        assert ticket.outlet_code in outlets and ticket.customer_code in customers
        assert products[ticket.product_serial].customer_code == ticket.customer_code
    for visit in ds.visits:
        assert tickets[visit.ticket_code].outlet_code == visit.outlet_code
        assert {s for s, _ in visit.required_skills} <= skills
        assert visit.pinned_technician_code in techs | {None}
    assert all(u.technician_code in techs | {None} and u.outlet_code in outlets | {None}
               for u in ds.users)


# ----- geography -------------------------------------------------------------------------------

def test_every_coordinate_is_on_land_inside_the_city(any_dataset: Dataset) -> None:
    """Outlets, technicians' homes and customers are on land and inside the dataset's box."""
    points = all_points(any_dataset)
    lats = np.array([p[1] for p in points])
    lons = np.array([p[2] for p in points])
    at_sea = [p[0] for p, land in zip(points, globe.is_land(lats, lons), strict=True) if not land]
    assert at_sea == []
    outside = [p[0] for p in points if not geo.in_box(p[1], p[2], any_dataset.bounding_box)]
    assert outside == []


def test_qingdao_uses_real_districts(qingdao: Dataset) -> None:
    """Demo customers live in Qingdao's districts, named in their addresses."""
    assert {c.district for c in qingdao.customers} >= {"市南区", "市北区", "崂山区", "李沧区",
                                                       "黄岛区"}
    assert all(c.address.startswith(f"青岛市{c.district}") for c in qingdao.customers)


def test_fast_land_lookup_agrees_with_the_library() -> None:
    """The generator's land lookup gives the same answer as global_land_mask.is_land."""
    rng = np.random.default_rng(3)
    lats, lons = rng.uniform(35.5, 37.2, 3000), rng.uniform(119.5, 121.0, 3000)
    mine = [geo.is_on_land(a, b) for a, b in zip(lats, lons, strict=True)]
    assert mine == list(globe.is_land(lats, lons))
    assert 0 < sum(mine) < len(mine)  # the sample has both land and sea


# ----- skills ----------------------------------------------------------------------------------

def test_every_visit_has_a_capable_technician(any_dataset: Dataset) -> None:
    """Each visit, except the declared ones, has a working technician of its outlet with all
    its skills at the required levels; the declared ones have none."""
    crews: dict[str, list[fixtures.Technician]] = {}
    for tech in working_technicians(any_dataset):
        crews.setdefault(tech.outlet_code, []).append(tech)
    unskilled = {v.code for v in any_dataset.visits
                 if not any(can_do(t.skills, v.required_skills) for t in crews[v.outlet_code])}
    assert unskilled == set(any_dataset.unskilled_visit_codes)


def test_a_capable_shift_covers_a_window(any_dataset: Dataset) -> None:
    """Each servable visit has a capable working technician who can start it inside one of
    its windows and finish before the shift ends."""
    shifts = {s.technician_code: s for s in any_dataset.shifts}
    techs = working_technicians(any_dataset)
    for visit in any_dataset.visits:
        if visit.code in any_dataset.unskilled_visit_codes:
            continue
        able = [shifts[t.code] for t in techs if t.outlet_code == visit.outlet_code
                and can_do(t.skills, visit.required_skills)]
        length = timedelta(minutes=visit.duration_minutes)
        assert any(max(start, s.starts_at) <= min(end, s.ends_at - length)
                   for s in able for start, end in visit.windows), visit.code


def test_tiny_declares_exactly_one_unskilled_visit(tiny: Dataset) -> None:
    """tiny has one deliberately unservable visit: a gas job, and nobody holds gas_cert."""
    assert len(tiny.unskilled_visit_codes) == 1
    (visit,) = [v for v in tiny.visits if v.code in tiny.unskilled_visit_codes]
    assert ("gas_cert", 1) in visit.required_skills
    assert all("gas_cert" not in dict(t.skills) for t in tiny.technicians)


def test_technicians_hold_two_to_five_skills(any_dataset: Dataset) -> None:
    """Each technician has between 2 and 5 distinct skills at levels 1 to 3."""
    for tech in any_dataset.technicians:
        codes = [s for s, _ in tech.skills]
        assert 2 <= len(codes) <= 5 and len(codes) == len(set(codes))
        assert all(1 <= level <= 3 for _, level in tech.skills)


def test_ac_installation_needs_height_work(qingdao: Dataset) -> None:
    """Split AC installations need ac_install and height_work and take 2 to 4 hours."""
    tickets = {t.code: t for t in qingdao.tickets}
    installs = [v for v in qingdao.visits
                if {s for s, _ in v.required_skills} >= {"ac_install", "height_work"}]
    assert installs
    for visit in installs:
        assert tickets[visit.ticket_code].kind == "installation"
        assert 120 <= visit.duration_minutes <= 240


# ----- time ------------------------------------------------------------------------------------

def test_windows_lie_within_the_day(any_dataset: Dataset) -> None:
    """Windows end after they start, are 2 or 4 hours inside 08:00-20:00 of the day, and do
    not overlap; an agreed window is one of them."""
    for visit in any_dataset.visits:
        assert visit.windows
        for start, end in visit.windows:
            assert start.date() == any_dataset.day and end > start
            assert time(8) <= start.time() and end.time() <= time(20)
            assert end - start in (timedelta(hours=2), timedelta(hours=4))
        for (_, end), (start, _) in zip(visit.windows, visit.windows[1:], strict=False):
            assert end <= start
        if visit.agreed_start is not None:
            assert (visit.agreed_start, visit.agreed_end) in visit.windows


def test_timestamps_are_aware_in_shanghai(any_dataset: Dataset) -> None:
    """Every timestamp carries the Asia/Shanghai zone."""
    stamps: list[datetime] = [t.reported_at for t in any_dataset.tickets]
    stamps += [s.starts_at for s in any_dataset.shifts]
    stamps += [w for v in any_dataset.visits for window in v.windows for w in window]
    assert all(str(s.tzinfo) == "Asia/Shanghai" for s in stamps)
    assert {o.timezone for o in any_dataset.outlets} == {"Asia/Shanghai"}


def test_one_shift_per_active_technician(any_dataset: Dataset) -> None:
    """Each active technician has one shift on the day, with its lunch window inside it."""
    active = sorted(t.code for t in any_dataset.technicians if t.active)
    assert sorted(s.technician_code for s in any_dataset.shifts) == active
    for shift in any_dataset.shifts:
        assert shift.starts_at < shift.lunch_window_start < shift.lunch_window_end < shift.ends_at
        lunch = shift.lunch_window_end - shift.lunch_window_start
        assert lunch >= timedelta(minutes=shift.lunch_minutes)
        assert shift.start_place in ("home", "outlet") and shift.end_place in ("home", "outlet")
        assert (shift.absence_reason is not None) == shift.absent


def test_tickets_are_reported_before_the_day_with_sla(any_dataset: Dataset) -> None:
    """Tickets are reported before their visit's day starts or early that morning; a repair's
    SLA is 6 hours when reported in business hours and 24 hours otherwise; installations and
    maintenance are booked ahead and carry none."""
    outlets = {o.code: o for o in any_dataset.outlets}
    zone = any_dataset.tickets[0].reported_at.tzinfo
    day_end = datetime.combine(any_dataset.day, time(9), tzinfo=zone)
    for ticket in any_dataset.tickets:
        assert ticket.reported_at < day_end
        outlet = outlets[ticket.outlet_code]
        in_hours = outlet.business_open <= ticket.reported_at.time() < outlet.business_close
        if ticket.kind != "repair":
            assert ticket.sla_deadline is None
            continue
        assert ticket.sla_deadline is not None
        assert ticket.sla_deadline - ticket.reported_at == timedelta(hours=6 if in_hours else 24)


# ----- the mix ---------------------------------------------------------------------------------

def test_about_sixty_percent_confirmed(any_dataset: Dataset) -> None:
    """55-65 % of visits are confirmed with an agreed window; the rest are unconfirmed or
    proposed, without one."""
    confirmed = {v.code for v in any_dataset.visits
                 if v.confirmation_status in ("confirmed", "reconfirmed")}
    assert 0.55 <= len(confirmed) / len(any_dataset.visits) <= 0.65
    for visit in any_dataset.visits:
        is_confirmed = visit.code in confirmed
        assert (visit.agreed_start is not None) == is_confirmed
        assert is_confirmed or visit.confirmation_status in ("unconfirmed", "proposed")


def test_qingdao_mix_is_realistic(qingdao: Dataset) -> None:
    """The demo day has a few emergencies, English speakers, own calling hours, two-window
    visits, every kind of ticket, slower and faster technicians, and home starts."""
    priorities = Counter(v.priority for v in qingdao.visits)
    assert 1 <= priorities[4] <= 0.06 * len(qingdao.visits)
    assert {1, 2, 3} <= set(priorities)
    assert 1 <= sum(c.language == "en" for c in qingdao.customers) <= 20
    assert any(c.calling_start is not None for c in qingdao.customers)
    assert any(c.honorific not in ("先生", "女士") for c in qingdao.customers)
    assert sum(len(v.windows) == 2 for v in qingdao.visits) >= 10
    assert {t.kind for t in qingdao.tickets} == {"installation", "repair", "maintenance",
                                                 "follow_up"}
    assert {1.0} < {t.duration_factor for t in qingdao.technicians}
    assert any(s.start_place == "home" for s in qingdao.shifts)
    assert any(t.active is False for t in qingdao.technicians)
    assert all(any("en" in t.languages for t in qingdao.technicians if t.outlet_code == o.code)
               for o in qingdao.outlets)


def test_warranties_in_and_out_of_date(qingdao: Dataset) -> None:
    """Some products are within their whole-unit warranty on the day and some are not."""
    inside = outside = 0
    for product in qingdao.products:
        if product.invoice_date is None:
            continue
        months = (qingdao.day.year - product.invoice_date.year) * 12 + (
            qingdao.day.month - product.invoice_date.month)
        inside += months < product.warranty_months
        outside += months > product.warranty_months
    assert inside >= 20 and outside >= 20


#: name: (least, most) share of the working technicians' hours that service time needs.
DEMAND_SHARE = {"tiny": (0.25, 0.8), "qingdao": (0.5, 0.7), "metro": (0.6, 0.8)}


def test_demand_is_tight_but_plannable(any_dataset: Dataset) -> None:
    """Service time needs 50-70 % of qingdao's working hours (a day the outlets can mostly
    serve: travel and waiting need the rest), 60-80 % of metro's (ten visits a technician) and
    25-80 % of tiny's (a light day checkable by hand)."""
    shifts = {s.technician_code: s for s in any_dataset.shifts}
    hours = sum((shifts[t.code].ends_at - shifts[t.code].starts_at).total_seconds() / 60
                - shifts[t.code].lunch_minutes for t in working_technicians(any_dataset))
    demand = sum(v.duration_minutes for v in any_dataset.visits)
    least, most = DEMAND_SHARE[any_dataset.name]
    assert least <= demand / hours <= most


def test_bookings_follow_the_crews_skills(qingdao: Dataset) -> None:
    """Each outlet books mostly work many of its technicians can do: on average a visit can be
    done by at least a quarter of the outlet's working crew."""
    crews: dict[str, list[fixtures.Technician]] = {}
    for tech in working_technicians(qingdao):
        crews.setdefault(tech.outlet_code, []).append(tech)
    shares = [sum(can_do(t.skills, v.required_skills) for t in crews[v.outlet_code])
              / len(crews[v.outlet_code]) for v in qingdao.visits]
    assert sum(shares) / len(shares) >= 0.25


def test_users_cover_every_role(any_dataset: Dataset) -> None:
    """One admin, one manager, one dispatcher, and one technician login per technician."""
    roles = Counter(u.role for u in any_dataset.users)
    assert roles == {"admin": 1, "manager": 1, "dispatcher": 1,
                     "technician": len(any_dataset.technicians)}
    assert {u.technician_code for u in any_dataset.users if u.role == "technician"} == {
        t.code for t in any_dataset.technicians}


def test_metro_generation_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Making metro checks the land mask for few more points than it places (no runaway
    redraws)."""
    calls = 0
    real = geo.is_on_land

    def counting(lat: float, lon: float) -> bool:
        nonlocal calls
        calls += 1
        return real(lat, lon)

    monkeypatch.setattr(geo, "is_on_land", counting)
    ds = generate("metro", DAY, 5)
    placed = len(ds.customers) + len(ds.technicians)
    assert placed <= calls <= 1.5 * placed
