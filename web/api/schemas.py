"""The JSON shapes the API reads and writes (pydantic models, published in the OpenAPI document).

Times are ISO 8601 with the outlet's offset; dates are ISO dates in the outlet's zone.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["installation", "repair", "maintenance", "follow_up"]
StatusStep = Literal["en_route", "on_site", "done", "not_finished", "no_show"]
TaskOutcome = Literal["confirmed", "wants_change", "no_answer", "done"]

Code = Field(min_length=1, max_length=40)
Version = Field(ge=1, le=2**31 - 1, description="the version the change was made against")


class Strict(BaseModel):
    """A request body that refuses unknown fields (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """One problem among several (an import lists every bad row)."""

    field: str | None = None
    row: str | int | None = None
    file: str | None = None
    message_zh: str
    message_en: str


class ErrorBody(BaseModel):
    """Every error the API answers: a code, the message in the reader's language and both."""

    code: str
    status: int
    message: str
    message_zh: str
    message_en: str
    field: str | None = None
    row: str | int | None = None
    details: list[ErrorDetail] = []


# ---------------------------------------------------------------------------------------------
# Who is asking
# ---------------------------------------------------------------------------------------------


class Me(BaseModel):
    """The token's owner."""

    id: int
    username: str
    role: str
    technician_id: int | None
    outlet_id: int | None


# ---------------------------------------------------------------------------------------------
# Visits
# ---------------------------------------------------------------------------------------------


class Window(BaseModel):
    """A time range in the outlet's zone."""

    start: datetime
    end: datetime


class VisitOut(BaseModel):
    """A visit with its customer, product, windows and place in the current plan."""

    id: int
    code: str
    outlet: str
    day: Date
    kind: str
    customer: str
    phone: str
    address: str
    district: str
    product: str
    category: str
    windows: list[Window]
    agreed: Window | None
    duration_minutes: int
    skills: list[str]
    confirmation: str
    status: str
    priority: int
    technician_id: int | None
    technician: str | None
    planned_start: datetime | None
    lat: float
    lon: float
    version: int


class VisitList(BaseModel):
    """The visits of an outlet-day (or of the signed-in technician's day), in plan order."""

    outlet: str
    day: Date
    items: list[VisitOut]


class VisitQuery(BaseModel):
    """Which day to list: an outlet (dispatchers) and a date (default: today there)."""

    outlet: str | None = Field(default=None, min_length=1, max_length=40)
    date: Date | None = None


class VisitCreate(Strict):
    """A new request: the customer and product already on file, what they ask for."""

    outlet: str = Code
    customer: str = Field(min_length=1, max_length=40, description="customer code")
    product: str | None = Field(default=None, min_length=1, max_length=80,
                                description="serial of the customer's product")
    kind: Kind
    symptom: str = Field(default="", max_length=2000)
    duration_minutes: int | None = Field(default=None, ge=10, le=600)
    priority: int = Field(default=2, ge=1, le=4)
    skills: dict[str, int] | None = Field(default=None, description="skill code -> min level")


class VisitUpdate(Strict):
    """A change to a visit's details, made against a version."""

    expected_version: int = Version
    duration_minutes: int | None = Field(default=None, ge=10, le=600)
    priority: int | None = Field(default=None, ge=1, le=4)


class StatusChange(Strict):
    """A technician's status step for one of their visits."""

    status: StatusStep
    reason: str | None = Field(default=None, max_length=40,
                               description="why it could not be finished (a reason code)")
    note: str = Field(default="", max_length=2000)
    expected_version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class Part(Strict):
    """A part used, with its quantity."""

    name: str = Field(min_length=1, max_length=100)
    quantity: int = Field(default=1, ge=1, le=99)


class RecordIn(Strict):
    """The service record the technician fills in on site."""

    fault_found: str = Field(default="", max_length=2000)
    cause: str = Field(default="", max_length=2000)
    parts_used: list[Part] = Field(default=[], max_length=30)
    work_done: str = Field(default="", max_length=2000)
    customer_verified: bool = False
    verified_name: str = Field(default="", max_length=100)
    rating: int | None = Field(default=None, ge=1, le=5)
    feedback: str = Field(default="", max_length=2000)


class RecordOut(BaseModel):
    """A visit's service record as stored."""

    visit_id: int
    technician_id: int
    fault_found: str
    cause: str
    parts_used: list[Any]
    work_done: str
    customer_verified: bool
    verified_name: str | None
    rating: int | None
    feedback: str


class SlotQuery(BaseModel):
    """How many days after today to look at, and how many slots to return."""

    days: int = Field(default=3, ge=0, le=7)
    limit: int = Field(default=12, ge=1, le=50)


class SlotOut(BaseModel):
    """A slot to offer the customer: the window, who would come, what it costs."""

    key: str
    day: Date
    start: datetime
    end: datetime
    technician_id: int
    technician: str
    planned_start: datetime
    added_travel_seconds: int
    slack_seconds: int


class SlotList(BaseModel):
    """Slots for a visit, cheapest first."""

    visit_id: int
    items: list[SlotOut]


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------


class CsvImport(Strict):
    """CSV files as text (UTF-8), any of the three; all or nothing."""

    customers: str | None = Field(default=None, max_length=5_000_000)
    technicians: str | None = Field(default=None, max_length=5_000_000)
    visits: str | None = Field(default=None, max_length=5_000_000)


class DayImport(Strict):
    """A day in the JSON form that ``dispatch export`` writes; all or nothing."""

    data: dict[str, Any]
    source: str = Field(default="day.json", min_length=1, max_length=200)


class ImportResult(BaseModel):
    """What an import read and wrote."""

    rows: dict[str, int]
    geocoded: int
    summary: list[str]


# ---------------------------------------------------------------------------------------------
# Plans and solve jobs
# ---------------------------------------------------------------------------------------------


class SolveStart(Strict):
    """Which outlet-day to solve, and for how long at most."""

    outlet: str = Code
    date: Date
    time_limit: float = Field(default=10.0, ge=1.0, le=600.0)


class JobOut(BaseModel):
    """A background solve: its status, progress, message and the plan it made."""

    id: int
    outlet_id: int
    day: Date
    status: str
    progress: float
    finished: bool
    plan_id: int | None
    message: str
    started_by: str
    started_at: datetime | None
    finished_at: datetime | None
    time_limit_seconds: float
    stop_requested: bool


class StopOut(BaseModel):
    """A plan stop: a visit or a break of one technician, in order."""

    technician_id: int
    sequence: int
    kind: str
    visit_id: int | None
    arrival_at: datetime
    start_at: datetime
    end_at: datetime
    late_seconds: int


class UnassignedOut(BaseModel):
    """A visit the plan leaves out, with the reason in the reader's language."""

    visit_id: int
    reason_code: str
    reason: str


class PlanOut(BaseModel):
    """A plan version of an outlet-day with its KPIs, stops and unassigned visits."""

    id: int
    outlet: str
    day: Date
    number: int
    status: str
    version: int
    created_by: str
    created_at: datetime
    published_at: datetime | None
    kpis: dict[str, Any]
    stops: list[StopOut]
    unassigned: list[UnassignedOut]


class PlanBrief(BaseModel):
    """A plan version without its stops."""

    id: int
    number: int
    status: str
    version: int
    created_at: datetime


class PlanList(BaseModel):
    """The plan versions of an outlet-day, newest first."""

    outlet: str
    day: Date
    items: list[PlanBrief]


class PlanQuery(BaseModel):
    """Which outlet-day."""

    outlet: str = Code
    date: Date


class Publish(Strict):
    """Publish the plan as it was read."""

    expected_version: int = Version


# ---------------------------------------------------------------------------------------------
# Tasks and notifications
# ---------------------------------------------------------------------------------------------


class TaskQuery(BaseModel):
    """Which outlet-day's tasks."""

    outlet: str = Code
    date: Date


class TaskOut(BaseModel):
    """A call, notice or review for a person, with its due window."""

    id: int
    kind: str
    visit_id: int | None
    ticket_id: int | None
    assignee_role: str
    technician_id: int | None
    due_from: datetime
    due_by: datetime
    status: str
    outcome: str | None
    flagged: bool
    flag_reason: str
    payload: dict[str, Any]
    version: int


class TaskList(BaseModel):
    """An outlet-day's tasks, by due time."""

    items: list[TaskOut]


class TaskUpdate(Strict):
    """What came of a call or notice."""

    outcome: TaskOutcome
    note: str = Field(default="", max_length=2000)
    expected_version: int = Version


class NotificationOut(BaseModel):
    """A delivered in-app message."""

    id: int
    template: str
    subject: str
    text: str
    sent_at: datetime | None
    created_at: datetime


class NotificationList(BaseModel):
    """The inbox, newest first."""

    items: list[NotificationOut]
