"""Warranty: the "three guarantees" (三包: return, exchange, repair) for a visit's product and day.

The rules of DOMAIN.md, counted in calendar days from the invoice date:
- installation of a new product is free;
- an exclusion recorded on the ticket (``ServiceTicket.warranty_exclusions``) makes the work
  chargeable with that reason; so does a product without an invoice date ("no_invoice");
- a performance fault within 7 days of sale: return, exchange or repair (the customer chooses);
  within 15 days: exchange or repair;
- within the warranty period: free repair; the whole unit is covered for ``warranty_months``,
  and a fault of a main part (compressor, motor, circuit board...) for
  ``main_parts_warranty_months``. A ticket says a main part failed with the tag ``#main_part``
  (or ``#主要部件``) in its symptom, which is how the dispatcher records the diagnosis;
- repaired twice within warranty and still failing (a new repair ticket): exchange;
- after the warranty period: the service continues, chargeable ("expired").
``remedy`` names the strongest remedy the customer is entitled to: "return" includes exchange
and repair, "exchange" includes repair. Not covered means ``remedy == "none"``.
Not modelled: time in repair extending the period, and an exchange restarting it (no records of
either exist yet).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Literal

from dispatch import models as m
from dispatch.errors import ValidationError

Remedy = Literal["return", "exchange", "repair", "none"]

RETURN_DAYS = 7
EXCHANGE_DAYS = 15
#: Repairs within warranty after which a further failure entitles the customer to an exchange.
REPAIRS_BEFORE_EXCHANGE = 2
MAIN_PART_TAGS = ("#main_part", "#主要部件")

#: Exclusion codes, in the order they are reported when several are recorded.
EXCLUSIONS: dict[str, tuple[str, str]] = {
    "expired": ("保修期已过，本次服务需收费。",
                "The warranty has expired; this service is chargeable."),
    "misuse": ("故障因使用不当或非本公司安装造成，不在三包范围内，需收费。",
               "The fault comes from misuse or installation by others; it is not covered and "
               "is chargeable."),
    "unauthorised_repair": ("产品曾被非授权维修人员拆修，不在三包范围内，需收费。",
                            "The product was opened by an unauthorised repairer; it is not "
                            "covered and is chargeable."),
    "no_invoice": ("没有有效发票或保修卡，无法享受三包，需收费。",
                   "There is no valid invoice or warranty card; the service is chargeable."),
    "altered_card": ("保修卡信息被涂改，不在三包范围内，需收费。",
                     "The warranty card was altered; the service is chargeable."),
    "model_mismatch": ("保修凭证与产品型号不符，不在三包范围内，需收费。",
                       "The warranty papers do not match the product model; the service is "
                       "chargeable."),
    "force_majeure": ("故障由不可抗力造成，不在三包范围内，需收费。",
                      "The fault was caused by force majeure; it is not covered and is "
                      "chargeable."),
}

COVERED_REASONS: dict[str, tuple[str, str]] = {
    "installation_free": ("新产品安装免费。", "Installing a new product is free."),
    "follow_up_free": ("回访免费。", "A follow-up is free."),
    "within_7_days": ("购买 7 日内出现性能故障，可选择退货、换货或维修，免费。",
                      "A performance fault within 7 days of purchase: return, exchange or "
                      "repair, free of charge."),
    "within_15_days": ("购买 15 日内出现性能故障，可选择换货或维修，免费。",
                       "A performance fault within 15 days of purchase: exchange or repair, "
                       "free of charge."),
    "repaired_twice": ("保修期内已维修两次仍有故障，可予换货，免费。",
                       "Repaired twice within warranty and still failing: the product may be "
                       "exchanged, free of charge."),
    "main_part_in_warranty": ("主要部件在保修期内，免费维修。",
                              "The main part is under warranty: free repair."),
    "in_warranty": ("整机在保修期内，免费维修。", "The unit is under warranty: free repair."),
    "unknown_product": ("工单未登记产品，无法确认保修，需收费。",
                        "The ticket names no product, so no warranty can be confirmed; the "
                        "service is chargeable."),
}


@dataclass(frozen=True)
class WarrantyOutcome:
    """What the warranty gives for a ticket on a day, and why, in both languages."""

    covered: bool
    remedy: Remedy
    chargeable: bool
    reason_code: str
    reason_zh: str
    reason_en: str
    warranty_until: date | None


def assess(product: m.CustomerProduct | None, ticket: m.ServiceTicket,
           on_day: date) -> WarrantyOutcome:
    """The warranty outcome of ``ticket`` for ``product`` when served on ``on_day``."""
    until = warranty_until(product, ticket)
    if ticket.kind == m.TicketKind.INSTALLATION:
        return _free("installation_free", "none", until)
    if ticket.kind == m.TicketKind.FOLLOW_UP:
        return _free("follow_up_free", "none", until)
    exclusion = first_exclusion(ticket)
    if exclusion is not None:
        return _charged(exclusion, until)
    if product is None:
        return _charged("unknown_product", None)
    if product.invoice_date is None:
        return _charged("no_invoice", None)
    return _by_age(product, ticket, on_day, until)


def _by_age(product: m.CustomerProduct, ticket: m.ServiceTicket, on_day: date,
            until: date | None) -> WarrantyOutcome:
    sold = product.invoice_date
    assert sold is not None  # checked by the caller
    if on_day < sold:
        raise ValidationError(
            f"the service day {on_day} is before the invoice date {sold}",
            f"服务日期 {on_day} 早于发票日期 {sold}",
            field="CustomerProduct.invoice_date", row=product.serial)
    age = (on_day - sold).days
    if ticket.kind == m.TicketKind.REPAIR and age <= RETURN_DAYS:
        return _free("within_7_days", "return", until)
    if ticket.kind == m.TicketKind.REPAIR and age <= EXCHANGE_DAYS:
        return _free("within_15_days", "exchange", until)
    if until is None or on_day > until:
        return _charged("expired", until)
    if ticket.kind == m.TicketKind.REPAIR and repairs_in_warranty(product, until) \
            >= REPAIRS_BEFORE_EXCHANGE:
        return _free("repaired_twice", "exchange", until)
    return _free("main_part_in_warranty" if is_main_part_fault(ticket) else "in_warranty",
                 "repair", until)


def warranty_until(product: m.CustomerProduct | None, ticket: m.ServiceTicket) -> date | None:
    """The last covered day for this ticket's fault (main-part term for a main-part fault)."""
    if product is None or product.invoice_date is None:
        return None
    months = product.warranty_months
    if is_main_part_fault(ticket):
        months = max(months, product.main_parts_warranty_months)
    return add_months(product.invoice_date, months)


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months (the 31st becomes the month's last day if shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def is_main_part_fault(ticket: m.ServiceTicket) -> bool:
    """Whether the ticket's symptom marks the fault as one of a main part."""
    symptom = (ticket.symptom or "").lower()
    return any(tag in symptom for tag in MAIN_PART_TAGS)


def repairs_in_warranty(product: m.CustomerProduct, until: date) -> int:
    """How many recorded repairs of the product fell inside its warranty period."""
    sold = product.invoice_date
    return sum(1 for r in product.repairs if sold is not None and sold <= r.repaired_on <= until)


def first_exclusion(ticket: m.ServiceTicket) -> str | None:
    """The first exclusion recorded on the ticket (in ``EXCLUSIONS`` order), or None.

    An unknown code raises ValidationError naming the ticket.
    """
    recorded = list(ticket.warranty_exclusions or [])
    for code in recorded:
        if code not in EXCLUSIONS:
            raise ValidationError(
                f"{code!r} is not a warranty exclusion; use one of {', '.join(EXCLUSIONS)}",
                f"{code!r} 不是有效的三包除外情形，可选：{'、'.join(EXCLUSIONS)}",
                field="ServiceTicket.warranty_exclusions", row=ticket.code)
    return next((code for code in EXCLUSIONS if code in recorded), None)


def _free(code: str, remedy: Remedy, until: date | None) -> WarrantyOutcome:
    zh, en = COVERED_REASONS[code]
    return WarrantyOutcome(True, remedy, False, code, zh, en, until)


def _charged(code: str, until: date | None) -> WarrantyOutcome:
    zh, en = EXCLUSIONS.get(code) or COVERED_REASONS[code]
    return WarrantyOutcome(False, "none", True, code, zh, en, until)
