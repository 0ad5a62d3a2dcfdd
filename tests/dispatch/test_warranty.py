"""Warranty (三包): return, exchange, free repair, exclusions, charges."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.warranty import add_months, assess

SOLD = date(2025, 1, 10)


def product(invoice: date | None = SOLD, repairs: int = 0) -> m.CustomerProduct:
    """A detached product sold on ``invoice`` with 12 months unit and 36 months main-part
    warranty and ``repairs`` earlier repairs."""
    return m.CustomerProduct(
        serial="SN-1", category=m.ProductCategory.AIR_CONDITIONER, brand="B", model="M",
        invoice_date=invoice, warranty_months=12, main_parts_warranty_months=36,
        repairs=[m.ProductRepair(repaired_on=SOLD + timedelta(days=40 + 30 * i))
                 for i in range(repairs)])


def ticket(kind: m.TicketKind = m.TicketKind.REPAIR, symptom: str = "不制冷",
           exclusions: list[str] | None = None) -> m.ServiceTicket:
    """A detached ticket of ``kind``."""
    return m.ServiceTicket(code="K1", kind=kind, symptom=symptom,
                           warranty_exclusions=exclusions or [])


def test_within_seven_days_return_is_possible() -> None:
    """A fault 7 days after sale gives return (and so exchange or repair), free."""
    outcome = assess(product(), ticket(), SOLD + timedelta(days=7))
    assert (outcome.covered, outcome.remedy, outcome.chargeable) == (True, "return", False)
    assert outcome.reason_code == "within_7_days" and outcome.reason_zh and outcome.reason_en


def test_day_eight_to_fifteen_exchange() -> None:
    """8 to 15 days after sale: exchange or repair, no longer return."""
    assert assess(product(), ticket(), SOLD + timedelta(days=8)).remedy == "exchange"
    assert assess(product(), ticket(), SOLD + timedelta(days=15)).remedy == "exchange"
    assert assess(product(), ticket(), SOLD + timedelta(days=16)).remedy == "repair"


def test_within_warranty_free_repair() -> None:
    """Within the whole-unit warranty a repair is free; the warranty end is reported."""
    outcome = assess(product(), ticket(), SOLD + timedelta(days=200))
    assert (outcome.remedy, outcome.chargeable, outcome.reason_code) == (
        "repair", False, "in_warranty")
    assert outcome.warranty_until == date(2026, 1, 10)


def test_after_warranty_chargeable() -> None:
    """After the whole-unit warranty the repair is chargeable ("expired")."""
    outcome = assess(product(), ticket(), date(2026, 1, 11))
    assert (outcome.covered, outcome.chargeable, outcome.reason_code) == (False, True, "expired")


def test_main_part_fault_uses_main_part_term() -> None:
    """A main-part fault (#main_part in the symptom) is free for the main-part term."""
    on = date(2027, 1, 1)
    outcome = assess(product(), ticket(symptom="压缩机不启动 #main_part"), on)
    assert (outcome.chargeable, outcome.reason_code) == (False, "main_part_in_warranty")
    assert outcome.warranty_until == date(2028, 1, 10)
    assert assess(product(), ticket(), on).chargeable


def test_repaired_twice_gives_exchange() -> None:
    """Two repairs within warranty and failing again: exchange; one repair: repair."""
    on = SOLD + timedelta(days=150)
    assert assess(product(repairs=2), ticket(), on).remedy == "exchange"
    assert assess(product(repairs=1), ticket(), on).remedy == "repair"


@pytest.mark.parametrize("code", ["misuse", "unauthorised_repair", "altered_card",
                                  "model_mismatch", "force_majeure", "no_invoice", "expired"])
def test_exclusion_makes_it_chargeable(code: str) -> None:
    """An exclusion recorded on the ticket makes the work chargeable with that reason."""
    outcome = assess(product(), ticket(exclusions=[code]), SOLD + timedelta(days=3))
    assert (outcome.covered, outcome.chargeable, outcome.reason_code) == (False, True, code)


def test_no_invoice_is_chargeable_not_a_crash() -> None:
    """A product without an invoice date is chargeable with reason no_invoice."""
    outcome = assess(product(invoice=None), ticket(), SOLD)
    assert (outcome.chargeable, outcome.reason_code, outcome.warranty_until) == (
        True, "no_invoice", None)


def test_installation_is_free_even_out_of_warranty() -> None:
    """Installing a new product is free whatever the dates."""
    outcome = assess(product(invoice=None), ticket(m.TicketKind.INSTALLATION), date(2030, 1, 1))
    assert (outcome.chargeable, outcome.reason_code) == (False, "installation_free")


def test_unknown_exclusion_is_refused() -> None:
    """An unknown exclusion code raises an error naming the field and the ticket."""
    with pytest.raises(ValidationError, match="warranty_exclusions") as info:
        assess(product(), ticket(exclusions=["bad_luck"]), SOLD)
    assert "K1" in str(info.value)


def test_service_before_sale_is_refused() -> None:
    """A service day before the invoice date is bad data and is reported as such."""
    with pytest.raises(ValidationError, match="invoice_date"):
        assess(product(), ticket(), SOLD - timedelta(days=1))


def test_add_months_clamps_to_month_end() -> None:
    """One month after 31 January is the last day of February."""
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)
