"""Geometry of the board's timeline: SVG boxes for each lane, 08:00-20:00, drawn server-side.

The page's policy forbids inline styles, so every position is an SVG attribute and every colour
a CSS class (the technician's colour is an SVG ``fill`` attribute, which is not a style).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _

from dispatch.boardview import Board, BoardStop, Lane, UnassignedRow
from web.labels import label

FIRST_HOUR = 8
LAST_HOUR = 20
LABEL_WIDTH = 150  # the technicians' names
HOUR_WIDTH = 100
LANE_HEIGHT = 34
HEADER_HEIGHT = 22
WIDTH = LABEL_WIDTH + HOUR_WIDTH * (LAST_HOUR - FIRST_HOUR) + 10
MIN_LABEL_WIDTH = 34
#: Drawing order of a lane's boxes, back to front.
LAYERS = ("shift", "window", "travel", "waiting", "break", "service", "late", "unassigned")  # a block narrower than this carries no text, only its tooltip


@dataclass
class Box:
    """One rectangle of a lane, with its class, tooltip and optional text."""

    x: float
    y: float
    w: float
    h: float
    kind: str  # travel | waiting | service | break | late | window | shift | unassigned
    title: str = ""
    text: str = ""
    fill: str | None = None
    visit_id: int | None = None
    broken: bool = False

    @property
    def text_x(self) -> float:
        """Where the block's text starts."""
        return self.x + 3


@dataclass
class LaneView:
    """A lane of the timeline: its name, colour, vertical place and boxes."""

    name: str
    colour: str
    y: float
    technician_id: int | None
    boxes: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class Timeline:
    """The whole SVG: size, hour ticks and lanes."""

    width: int
    height: int
    ticks: tuple[tuple[float, str], ...]
    lanes: tuple[LaneView, ...]
    label_width: int = LABEL_WIDTH
    header_height: int = HEADER_HEIGHT


def x_of(moment: datetime) -> float:
    """The x coordinate of a local time, clipped to the 08:00-20:00 scale."""
    hours = moment.hour + moment.minute / 60 + moment.second / 3600
    hours = min(max(hours, FIRST_HOUR), LAST_HOUR)
    return LABEL_WIDTH + (hours - FIRST_HOUR) * HOUR_WIDTH


def _span(start: datetime, end: datetime) -> tuple[float, float]:
    a, b = x_of(start), x_of(end)
    return a, max(0.0, b - a)


def timeline(board: Board) -> Timeline:
    """The timeline of the board: one lane per technician, then the unassigned visits."""
    lanes = []
    y = float(HEADER_HEIGHT)
    for lane in board.lanes:
        lanes.append(_lane(lane, y))
        y += LANE_HEIGHT
    rows = _unassigned_rows(board.unassigned)
    for index, row in enumerate(rows or [[]]):
        name = _("Not planned") if index == 0 else ""
        view = LaneView(name, "#b42318", y, None)
        view.boxes = [_unassigned_box(u, y) for u in row]
        lanes.append(view)
        y += LANE_HEIGHT
    ticks = tuple((LABEL_WIDTH + (h - FIRST_HOUR) * HOUR_WIDTH, f"{h:02d}:00")
                  for h in range(FIRST_HOUR, LAST_HOUR + 1))
    return Timeline(WIDTH, int(y) + 4, ticks, tuple(lanes))


def _lane(lane: Lane, y: float) -> LaneView:
    view = LaneView(lane.name, lane.colour, y, lane.technician_id)
    if lane.shift is not None:
        x, w = _span(*lane.shift)
        view.boxes.append(Box(x, y + 2, w, LANE_HEIGHT - 4, "shift",
                              _("Shift %(start)s–%(end)s", start=_hm(lane.shift[0]),
                                end=_hm(lane.shift[1]))))
    boxes = [box for stop in lane.stops for box in _stop_boxes(stop, y, lane.colour)]
    # Windows lie behind everything, services on top: a later window must not hide a visit.
    view.boxes += sorted(boxes, key=lambda box: LAYERS.index(box.kind))
    return view


def _stop_boxes(stop: BoardStop, y: float, colour: str) -> list[Box]:
    if stop.kind == "break":
        x, w = _span(stop.start, stop.end)
        return [Box(x, y + 8, w, LANE_HEIGHT - 16, "break",
                    _("Break %(start)s–%(end)s", start=_hm(stop.start), end=_hm(stop.end)),
                    _("Break") if w >= MIN_LABEL_WIDTH else "")]
    boxes = [Box(x, y + 3, w, LANE_HEIGHT - 6, "window", _window_title(stop))
             for x, w in (_span(a, b) for a, b in _spans(stop)) if w > 0]
    if stop.travel_seconds:
        leave = datetime.fromtimestamp(stop.arrival.timestamp() - stop.travel_seconds,
                                       stop.arrival.tzinfo)
        x, w = _span(leave, stop.arrival)
        boxes.append(Box(x, y + 13, w, 8, "travel",
                         _("Travel %(minutes)s min", minutes=round(stop.travel_seconds / 60))))
    if stop.waiting_seconds:
        x, w = _span(stop.arrival, stop.start)
        boxes.append(Box(x, y + 11, w, 12, "waiting",
                         _("Waiting %(minutes)s min", minutes=round(stop.waiting_seconds / 60))))
    x, w = _span(stop.start, stop.end)
    text = f"{stop.number} {stop.customer}" if w >= MIN_LABEL_WIDTH else str(stop.number)
    boxes.append(Box(x, y + 6, w, LANE_HEIGHT - 12, "service", _service_title(stop),
                     _fit(text, w), colour, stop.visit_id, stop.window_broken))
    if stop.late_seconds:
        due = datetime.fromtimestamp(stop.start.timestamp() - stop.late_seconds,
                                     stop.start.tzinfo)
        lx, lw = _span(due, stop.start)
        boxes.append(Box(lx, y + LANE_HEIGHT - 6, max(lw, 3.0), 4, "late",
                         _("Late %(minutes)s min", minutes=round(stop.late_seconds / 60))))
    return boxes


def _spans(stop: BoardStop) -> tuple[tuple[datetime, datetime], ...]:
    return (stop.agreed,) if stop.agreed else stop.windows


def _hm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _window_title(stop: BoardStop) -> str:
    return _("Window %(window)s", window=", ".join(f"{_hm(a)}–{_hm(b)}" for a, b in _spans(stop)))


def _service_title(stop: BoardStop) -> str:
    parts = [f"#{stop.number} {stop.code} {stop.customer}",
             _("Arrival %(time)s", time=_hm(stop.arrival)),
             f"{_hm(stop.start)}–{_hm(stop.end)}",
             _window_title(stop), label(stop.status)]
    if stop.window_broken:
        parts.append(_("Outside the agreed window"))
    return " · ".join(parts)


def _fit(text: str, width: float) -> str:
    """Cut a label to what fits in the block (CJK characters are about twice as wide)."""
    room = width - 6
    out, used = "", 0.0
    for ch in text:
        step = 11.0 if ord(ch) > 0x2E80 else 6.2
        if used + step > room:
            return out.rstrip() + "…" if out else ""
        out += ch
        used += step
    return out


def _unassigned_rows(rows: tuple[UnassignedRow, ...]) -> list[list[UnassignedRow]]:
    """Pack the unassigned visits into as few lines as their windows allow without overlap."""
    lines: list[tuple[float, list[UnassignedRow]]] = []
    for row in sorted(rows, key=_first_x):
        start, end = _first_x(row), _first_x(row) + _first_w(row)
        for index, (free_at, members) in enumerate(lines):
            if start >= free_at:
                members.append(row)
                lines[index] = (end + 2, members)
                break
        else:
            lines.append((end + 2, [row]))
    return [members for _free, members in lines]


def _first_x(row: UnassignedRow) -> float:
    return x_of(row.windows[0][0]) if row.windows else float(LABEL_WIDTH)


def _first_w(row: UnassignedRow) -> float:
    if not row.windows:
        return float(HOUR_WIDTH)
    return max(_span(*row.windows[0])[1], 40.0)


def _unassigned_box(row: UnassignedRow, y: float) -> Box:
    x, w = _first_x(row), _first_w(row)
    window = ", ".join(f"{_hm(a)}–{_hm(b)}" for a, b in row.windows)
    return Box(x, y + 5, w, LANE_HEIGHT - 10, "unassigned",
               f"{row.code} {row.customer} · {window}", _fit(row.customer, w),
               visit_id=row.visit_id)
