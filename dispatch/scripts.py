"""Call scripts: what a dispatcher or technician says to a customer, per visit, kind and language.

A script is rendered from a Jinja2 template in ``dispatch/script_templates/<lang>/<kind>.txt``.
Templates hold the wording; this module gathers the facts (how to address the customer, who
comes, when, warranty and charge, what to prepare, the callback number) in the customer's
language and the outlet's local time. Templates emit every element through ``el(name)`` (a fact)
or ``el(name, text)`` (a fixed phrase such as the apology), so ``Script.elements`` tells exactly
which elements a rendered script contains: tests check elements, not sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch import config as app_config
from dispatch import models as m
from dispatch import warranty
from dispatch.errors import ValidationError
from dispatch.timeutil import require_aware, utc_to_local

TEMPLATE_DIR = Path(__file__).resolve().parent / "script_templates"

LANGUAGES: tuple[str, ...] = tuple(language.value for language in m.Language)

#: The elements each kind of script must contain (DOMAIN.md, "What a script contains").
KIND_ELEMENTS: dict[str, tuple[str, ...]] = {
    "confirmation": ("address", "company", "outlet", "technician", "purpose", "product", "date",
                     "weekday", "window", "ask", "warranty", "charge", "prepare", "callback"),
    "reconfirmation": ("address", "company", "outlet", "technician", "purpose", "product",
                       "date", "weekday", "window", "arrival", "ask", "prepare", "callback"),
    "delay_notice": ("address", "company", "outlet", "technician", "apology", "cause", "date",
                     "weekday", "window", "arrival", "ask", "callback"),
    "change_request": ("address", "company", "outlet", "purpose", "product", "apology",
                       "reason", "date", "weekday", "window", "alternatives", "ask", "callback"),
    "handover_notice": ("address", "company", "outlet", "technician", "previous_technician",
                        "reason", "purpose", "product", "date", "weekday", "window", "ask",
                        "callback"),
    "completion": ("address", "company", "outlet", "technician", "purpose", "product",
                   "work_done", "verify", "callback"),
    "followup": ("address", "company", "outlet", "technician", "purpose", "product",
                 "satisfaction", "problem_solved", "callback"),
}
SCRIPT_KINDS: tuple[str, ...] = tuple(KIND_ELEMENTS)

TITLES: dict[str, tuple[str, str]] = {
    "confirmation": ("预约确认电话", "Appointment confirmation call"),
    "reconfirmation": ("出发前再次确认", "Re-confirmation before setting off"),
    "delay_notice": ("迟到通知", "Delay notice"),
    "change_request": ("改约征询", "Request to change the appointment"),
    "handover_notice": ("更换师傅通知", "Change of technician"),
    "completion": ("完工确认", "Completion and sign-off"),
    "followup": ("服务回访", "Follow-up call"),
}

DEFAULT_COMPANY = ("售后服务中心", "the after-sales service centre")
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")

# Chinese surnames of two characters: "欧阳娜" is addressed as 欧阳女士, not 欧女士.
COMPOUND_SURNAMES = frozenset({"欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容",
                               "司徒", "夏侯", "尉迟", "长孙", "宇文", "公孙", "独孤", "端木"})
HONORIFICS_EN: dict[str, str] = {"先生": "Mr", "女士": "Ms", "小姐": "Ms"}
TITLES_EN: dict[str, str] = {"经理": "Manager", "处长": "Director", "总": "Director",
                             "老师": "Teacher", "主任": "Director", "医生": "Dr"}

PURPOSES: dict[m.TicketKind, tuple[str, str]] = {
    m.TicketKind.INSTALLATION: ("安装调试", "installation"),
    m.TicketKind.REPAIR: ("维修", "repair"),
    m.TicketKind.MAINTENANCE: ("保养检修", "maintenance"),
    m.TicketKind.FOLLOW_UP: ("回访检查", "follow-up check"),
}
CATEGORIES: dict[m.ProductCategory, tuple[str, str]] = {
    m.ProductCategory.AIR_CONDITIONER: ("空调", "air conditioner"),
    m.ProductCategory.WATER_HEATER: ("热水器", "water heater"),
    m.ProductCategory.WASHING_MACHINE: ("洗衣机", "washing machine"),
    m.ProductCategory.REFRIGERATOR: ("冰箱", "refrigerator"),
    m.ProductCategory.TV: ("电视", "TV"),
    m.ProductCategory.KITCHEN: ("燃气厨电", "gas kitchen appliance"),
    m.ProductCategory.WATER_PURIFIER: ("净水器", "water purifier"),
}

# What the customer should have ready, by product (and, for ACs and TVs, by kind of work).
PREPARATIONS: dict[m.ProductCategory, tuple[str, str]] = {
    m.ProductCategory.AIR_CONDITIONER: (
        "清出室内机和室外机周围的通道，并确认电源正常",
        "clear access to the indoor and outdoor units and make sure the power is on",
    ),
    m.ProductCategory.WATER_HEATER: (
        "确认进水阀和电源开关方便关闭",
        "make sure the water inlet valve and the power switch are easy to reach",
    ),
    m.ProductCategory.WASHING_MACHINE: (
        "确认水龙头和排水口可以使用，机器周围留出空间",
        "make sure the tap and the drain are usable and leave space around the machine",
    ),
    m.ProductCategory.REFRIGERATOR: (
        "整理冰箱内的食物，周围留出空间，电源插座可用",
        "tidy the food inside, leave space around it and keep a power socket free",
    ),
    m.ProductCategory.TV: (
        "电视周围留出空间，备好遥控器",
        "leave space around the TV and have the remote control ready",
    ),
    m.ProductCategory.KITCHEN: (
        "确认燃气阀门方便开关，灶台下柜门可以打开",
        "make sure the gas valve is easy to reach and the cabinet under the hob opens",
    ),
    m.ProductCategory.WATER_PURIFIER: (
        "确认水槽下方的进水阀可以关闭，柜内留出空间",
        "make sure the water valve under the sink can be closed and the cabinet is clear",
    ),
}
INSTALL_PREPARATIONS: dict[m.ProductCategory, tuple[str, str]] = {
    m.ProductCategory.AIR_CONDITIONER: (
        "清空室内机和室外机安装位置附近的物品，并确认电源插座可用",
        "clear the places for the indoor and outdoor units and make sure a power socket works",
    ),
    m.ProductCategory.TV: (
        "确认挂装墙面的类型（砖墙、混凝土或石膏板）以及电源和信号线的位置",
        "check the wall type (brick, concrete or plasterboard) and where power and aerial are",
    ),
}
GENERIC_PREPARATION = ("保持通道畅通，电源可用", "keep the way clear and the power on")

# Reasons people give for a delay, a change or a handover; free text is used as given.
# Reasons people give for a delay, a change or a handover (noun phrases: they follow
# 因为/由于 and "because of"); free text is used as given.
CAUSES: dict[str, tuple[str, str]] = {
    "traffic": ("路上堵车", "heavy traffic on the way"),
    "overrun": ("前一位客户的工作比预计的时间长", "an earlier job that took longer than expected"),
    "emergency": ("临时处理了一个紧急报修", "an urgent repair that came up"),
    "vehicle": ("车辆出了故障", "a problem with the service vehicle"),
    "weather": ("天气原因", "the weather"),
    "sick": ("原定的师傅身体不适", "illness of the technician planned for you"),
    "parts": ("所需配件还没有到货", "a delay in the delivery of the parts needed"),
    "schedule": ("当天的工作安排有调整", "a change in the day's schedule"),
    "skills": ("需要更有经验的师傅处理", "the job needing a more experienced technician"),
}
DEFAULT_CAUSE = "overrun"
DEFAULT_REASON = "schedule"


@dataclass(frozen=True)
class Script:
    """A rendered script: the words to say and the elements they contain."""

    kind: str
    lang: str
    title: str
    text: str
    elements: Mapping[str, str] = field(default_factory=dict)


def render_script(session: Session, visit: m.Visit, kind: str, lang: str | None = None, *,
                  now: datetime | None = None,
                  extra: Mapping[str, Any] | None = None) -> Script:
    """Render the ``kind`` script for ``visit`` in ``lang`` (default: the customer's language).

    ``extra`` supplies what the database does not know: ``technician`` (name of who comes),
    ``previous_technician``, ``cause`` / ``reason`` (a code of CAUSES or free text),
    ``arrival`` / ``new_arrival`` (aware datetime or ISO text), ``window`` and ``alternatives``
    ((start, end) pairs), ``work_done``, ``company``, ``medium`` ("call", the default, or
    "message" for a written text). ``now`` (aware) lets the date read
    "today"/"tomorrow". Raises ValidationError naming the field for an unknown kind or
    language, or when a fact the kind needs (e.g. the new arrival time) is missing.
    """
    if kind not in KIND_ELEMENTS:
        raise ValidationError(
            f"unknown script kind {kind!r}; choose one of {', '.join(SCRIPT_KINDS)}",
            f"未知的话术类型 {kind!r}，可选：{'、'.join(SCRIPT_KINDS)}", field="kind")
    language = _language(lang if lang is not None else visit.ticket.customer.language)
    facts = _Facts(session, visit, language, now, dict(extra or {}))
    used: dict[str, str] = {}
    # A written message (SMS, e-mail) leaves out what only makes sense on the phone.
    spoken = str(facts.extra.get("medium", "call")) != "message"
    # A delay notice for an arrival still inside the window says so rather than "late".
    within_window = kind == "delay_notice" and facts.arrival_within_window()
    text = _template(language, kind).render(el=_recorder(facts, used), spoken=spoken,
                                            within_window=within_window)
    title = TITLES[kind][0 if language == "zh" else 1]
    return Script(kind=kind, lang=language, title=title, text=_tidy(text), elements=used)


def _language(lang: str) -> str:
    value = str(lang).strip().lower()
    if value not in LANGUAGES:
        raise ValidationError(
            f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}",
            f"未知语言 {lang!r}，可选：{'、'.join(LANGUAGES)}", field="lang")
    return value


@cache
def _environment() -> jinja2.Environment:
    # Plain text read aloud: no HTML escaping; a misspelt name in a template must fail loudly.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def _template(language: str, kind: str) -> jinja2.Template:
    return _environment().get_template(f"{language}/{kind}.txt")


def _recorder(facts: _Facts, used: dict[str, str]) -> Callable[..., str]:
    def el(name: str, text: str | None = None) -> str:
        value = facts.get(name) if text is None else text
        used[name] = value
        return value

    return el


def _tidy(text: str) -> str:
    lines = (re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


# ---------------------------------------------------------------------------------------------
# Facts about the visit, in one language
# ---------------------------------------------------------------------------------------------


class _Facts:
    """The values a template may ask for, computed on first use in the script's language."""

    def __init__(self, session: Session, visit: m.Visit, lang: str, now: datetime | None,
                 extra: dict[str, Any]) -> None:
        self.session = session
        self.visit = visit
        self.ticket = visit.ticket
        self.customer = visit.ticket.customer
        self.outlet = visit.outlet
        self.lang = lang
        self.zh = lang == "zh"
        self.now = require_aware(now, "now") if now is not None else None
        self.extra = extra
        self._stop: m.PlanStop | None | bool = False  # False: not looked up yet

    def get(self, name: str) -> str:
        """Return the text of the fact ``name``."""
        getter = getattr(self, f"fact_{name}", None)
        if getter is None:
            raise KeyError(f"no fact named {name!r} for scripts")
        return str(getter())

    def pick(self, pair: tuple[str, str]) -> str:
        """Return the Chinese or English member of ``pair``."""
        return pair[0] if self.zh else pair[1]

    # ----- who ---------------------------------------------------------------------------------
    def fact_address(self) -> str:
        """How to address the customer (王先生, Mr Miller, 张经理)."""
        return address_customer(self.customer.name, self.customer.honorific, self.lang)

    def fact_company(self) -> str:
        """The company calling: extra, then COMPANY_NAME_ZH/EN, then a neutral default."""
        if self.extra.get("company"):
            return str(self.extra["company"])
        key = "COMPANY_NAME_ZH" if self.zh else "COMPANY_NAME_EN"
        return str(app_config.load_config().get(key) or self.pick(DEFAULT_COMPANY))

    def fact_outlet(self) -> str:
        """The outlet's name in the script's language."""
        return self.outlet.name if self.zh else (self.outlet.name_en or self.outlet.name)

    def fact_technician(self) -> str:
        """Who comes: extra, the published plan, the pinned or the promised technician."""
        name = self.extra.get("technician")
        if not name:
            technician = self._planned_technician()
            name = technician.name if technician is not None else None
        return self._person(name) if name else self.pick(("我们的师傅", "our technician"))

    def fact_previous_technician(self) -> str:
        """Who was promised before a handover."""
        name = self.extra.get("previous_technician")
        if not name and self.visit.committed_technician is not None:
            name = self.visit.committed_technician.name
        if not name:
            raise self._missing("previous_technician", "原定师傅", "the technician first promised")
        return self._person(name)

    def _person(self, name: Any) -> str:
        name = str(name).strip()
        if self.zh:
            return name if name.endswith("师傅") else f"{name}师傅"
        return f"technician {name}"

    def fact_callback(self) -> str:
        """The number the customer calls back: the outlet's phone."""
        phone = self.outlet.phone or app_config.load_config().get("SERVICE_PHONE")
        if not phone:
            raise self._missing("phone", "网点电话", "the outlet's phone number")
        return str(phone)

    # ----- what --------------------------------------------------------------------------------
    def fact_purpose(self) -> str:
        """The kind of work (维修, installation...)."""
        return self.pick(PURPOSES[self.ticket.kind])

    def fact_product(self) -> str:
        """Category, brand and model of the product."""
        product = self.ticket.product
        if product is None:
            return self.pick(("家电", "appliance"))
        category = self.pick(CATEGORIES[product.category])
        label = " ".join(part for part in (product.brand, product.model) if part)
        if self.zh:
            return f"{label} {category}" if label else category
        return f"{category} ({label})" if label else category

    def fact_prepare(self) -> str:
        """What the customer should have ready for this product and work."""
        product = self.ticket.product
        if product is None:
            return self.pick(GENERIC_PREPARATION)
        installing = self.ticket.kind == m.TicketKind.INSTALLATION
        if installing and product.category in INSTALL_PREPARATIONS:
            return self.pick(INSTALL_PREPARATIONS[product.category])
        return self.pick(PREPARATIONS[product.category])

    def fact_work_done(self) -> str:
        """What was done: extra, the service record, or a plain summary."""
        done = self.extra.get("work_done")
        if not done:
            record = self.session.scalar(
                select(m.ServiceRecord).where(m.ServiceRecord.visit_id == self.visit.id))
            done = record.work_done if record is not None else ""
        if done:
            return str(done)
        if self.zh:
            return f"已按工单完成{self.fact_purpose()}"
        return f"the {self.fact_purpose()} on the service order was carried out"

    # ----- warranty and charge -----------------------------------------------------------------
    def _warranty(self) -> warranty.WarrantyOutcome:
        return warranty.assess(self.ticket.product, self.ticket, self.visit.day)

    def fact_warranty(self) -> str:
        """The warranty outcome and its reason (with the end date when covered)."""
        outcome = self._warranty()
        reason = outcome.reason_zh if self.zh else outcome.reason_en
        if not outcome.covered or outcome.warranty_until is None:
            return reason
        until = outcome.warranty_until
        if self.zh:
            return f"{reason.rstrip('。')}（保修至{until.year}年{until.month}月{until.day}日）。"
        return (f"{reason.rstrip('.')} (warranty until {until.day} "
                f"{MONTHS_EN[until.month - 1]} {until.year}).")

    def fact_charge(self) -> str:
        """Whether the visit is free, or how the charge is told before the work."""
        if not self._warranty().chargeable:
            return self.pick(("本次不收费。", "There is no charge for this visit."))
        # Never surprise the customer: the cost is told, and agreed, before any work.
        detail = (self.ticket.charge_note or "").strip() or self.pick(
            ("具体费用师傅会在动工前先向您说明", "the technician will tell you the cost first"))
        return self.pick((f"收费方面，{detail}，经您同意后再动工。",
                          f"About the charge: {detail}; work starts only with your consent."))

    # ----- when --------------------------------------------------------------------------------
    def _window(self) -> tuple[datetime, datetime]:
        given = self.extra.get("window")
        if given:
            return _pair(given, "window")
        if self.visit.agreed_start is not None and self.visit.agreed_end is not None:
            return self.visit.agreed_start, self.visit.agreed_end
        stop = self._planned_stop()
        for window in self.visit.windows:
            if stop is not None and window.starts_at <= stop.start_at <= window.ends_at:
                return window.starts_at, window.ends_at
        if self.visit.windows:
            return self.visit.windows[0].starts_at, self.visit.windows[0].ends_at
        if stop is not None:
            return stop.start_at, stop.end_at
        raise self._missing("window", "上门时间段", "a time window")

    def _local(self, instant: datetime) -> datetime:
        return utc_to_local(instant, self.outlet.timezone)

    def fact_date(self) -> str:
        """The local date of the window (today/tomorrow when ``now`` is known)."""
        start = self._local(self._window()[0])
        return self._relative(start.date()) + format_date(start.date(), self.lang)

    def fact_weekday(self) -> str:
        """The local weekday of the window."""
        return format_weekday(self._local(self._window()[0]).date(), self.lang)

    def fact_window(self) -> str:
        """The local window, 09:00-11:00."""
        start, end = self._window()
        return format_window(self._local(start), self._local(end))

    def fact_arrival(self) -> str:
        """The expected (or new) local arrival time."""
        return self._local(self._arrival()).strftime("%H:%M")

    def arrival_within_window(self) -> bool:
        """Whether the expected arrival is still inside the window."""
        return self._arrival() <= self._window()[1]

    def _arrival(self) -> datetime:
        given = self.extra.get("new_arrival") or self.extra.get("arrival")
        if given:
            return _instant(given, "new_arrival")
        stop = self._planned_stop()
        if stop is None:
            raise self._missing("new_arrival", "预计到达时间", "the expected arrival time")
        return stop.arrival_at

    def fact_alternatives(self) -> str:
        """Up to three alternative windows to offer."""
        given = self.extra.get("alternatives")
        if given:
            pairs = [_pair(item, "alternatives") for item in given]
        else:
            current = self._window()
            pairs = [(w.starts_at, w.ends_at) for w in self.visit.windows
                     if (w.starts_at, w.ends_at) != current]
        if not pairs:
            raise self._missing("alternatives", "可选的其他时间", "alternative windows to offer")
        texts = [self._slot(start, end) for start, end in pairs[:3]]
        if len(texts) == 1:
            return texts[0]
        return (self.pick(("、", "; ")).join(texts[:-1]) + self.pick(("或", " or ")) + texts[-1])

    def _slot(self, start: datetime, end: datetime) -> str:
        local_start, local_end = self._local(start), self._local(end)
        day = local_start.date()
        window = format_window(local_start, local_end)
        if self.zh:
            return f"{format_date(day, 'zh')}（{format_weekday(day, 'zh')}）{window}"
        return f"{format_weekday(day, 'en')} {format_date(day, 'en')}, {window}"

    def _relative(self, day: date) -> str:
        if self.now is None:
            return ""
        today = self._local(self.now).date()
        words = {today: ("今天", "today, "), today + timedelta(days=1): ("明天", "tomorrow, ")}
        return self.pick(words[day]) if day in words else ""

    # ----- why ---------------------------------------------------------------------------------
    def fact_cause(self) -> str:
        """Why the technician is late."""
        return self._reason("cause", DEFAULT_CAUSE)

    def fact_reason(self) -> str:
        """Why the appointment or the technician changes."""
        return self._reason("reason", DEFAULT_REASON)

    def _reason(self, key: str, default: str) -> str:
        value = str(self.extra.get(key) or default)
        return self.pick(CAUSES[value]) if value in CAUSES else value

    # ----- the published plan ------------------------------------------------------------------
    def _planned_stop(self) -> m.PlanStop | None:
        if self._stop is False:
            self._stop = self.session.scalar(
                select(m.PlanStop).join(m.Plan)
                .where(m.PlanStop.visit_id == self.visit.id,
                       m.Plan.status == m.PlanStatus.PUBLISHED.value)
                .order_by(m.Plan.number.desc()).limit(1))
        return self._stop if isinstance(self._stop, m.PlanStop) else None

    def _planned_technician(self) -> m.Technician | None:
        stop = self._planned_stop()
        if stop is not None:
            return stop.technician
        return self.visit.pinned_technician or self.visit.committed_technician

    def _missing(self, name: str, what_zh: str, what_en: str) -> ValidationError:
        return ValidationError(
            f"visit {self.visit.code}: the script needs {what_en}, which is not known",
            f"上门服务 {self.visit.code}：话术需要{what_zh}，但目前未知", field=name)


# ---------------------------------------------------------------------------------------------
# Formatting helpers (also used by notifications)
# ---------------------------------------------------------------------------------------------


def address_customer(name: str, honorific: str, lang: str) -> str:
    """Return how to address a customer: 王先生 / 张经理, or Mr Miller / Manager 张."""
    surname = _surname(name)
    honorific = (honorific or "").strip()
    if lang == "zh":
        return f"{surname}{honorific or '先生/女士'}"
    if honorific in HONORIFICS_EN:
        return f"{HONORIFICS_EN[honorific]} {surname}"
    if honorific in TITLES_EN:
        return f"{TITLES_EN[honorific]} {surname}"
    return f"{honorific} {surname}" if honorific else f"Mr/Ms {surname}"


def _surname(name: str) -> str:
    name = name.strip()
    if re.search(r"[A-Za-z]", name):
        return name.split()[-1]  # Western order: the family name comes last
    if name[:2] in COMPOUND_SURNAMES:
        return name[:2]
    return name[:1]


def format_date(day: date, lang: str) -> str:
    """Return ``day`` as 3月10日 or 10 March."""
    if lang == "zh":
        return f"{day.month}月{day.day}日"
    return f"{day.day} {MONTHS_EN[day.month - 1]}"


def format_weekday(day: date, lang: str) -> str:
    """Return the weekday of ``day`` as 周一..周日 or Monday..Sunday."""
    return (WEEKDAYS_ZH if lang == "zh" else WEEKDAYS_EN)[day.weekday()]


def format_window(start: datetime, end: datetime) -> str:
    """Return a local window as 09:00-11:00."""
    return f"{start:%H:%M}-{end:%H:%M}"


def _instant(value: Any, field_name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError(f"{value!r} is not an ISO date and time",
                                  f"{value!r} 不是有效的 ISO 日期时间",
                                  field=field_name) from exc
    if not isinstance(value, datetime):
        raise ValidationError(f"expected a date and time, got {value!r}",
                              f"应为日期时间，实际为 {value!r}", field=field_name)
    return require_aware(value, field_name)


def _pair(value: Sequence[Any], field_name: str) -> tuple[datetime, datetime]:
    if isinstance(value, str) or len(value) != 2:
        raise ValidationError(f"expected a (start, end) pair, got {value!r}",
                              f"应为（开始，结束）时间对，实际为 {value!r}", field=field_name)
    return _instant(value[0], field_name), _instant(value[1], field_name)
