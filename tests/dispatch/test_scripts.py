"""Call scripts: every kind in both languages carries the elements DOMAIN.md lists."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.scripts import SCRIPT_KINDS, address_customer, render_script
from dispatch.warranty import assess
from tests.dispatch.builders import Graph, build_graph, local

# The elements each kind must contain, written out here as the specification (DOMAIN.md).
COMMON = {"address", "company", "outlet", "callback"}
WHEN = {"date", "weekday", "window"}
WHAT = {"purpose", "product"}
EXPECTED: dict[str, set[str]] = {
    "confirmation": COMMON | WHEN | WHAT | {"technician", "ask", "warranty", "charge", "prepare"},
    "reconfirmation": COMMON | WHEN | WHAT | {"technician", "arrival", "ask", "prepare"},
    "delay_notice": COMMON | WHEN | {"technician", "apology", "cause", "arrival", "ask"},
    "change_request": COMMON | WHEN | WHAT | {"apology", "reason", "alternatives", "ask"},
    "handover_notice": COMMON | WHEN | WHAT | {"technician", "previous_technician", "reason",
                                                "ask"},
    "completion": COMMON | WHAT | {"technician", "work_done", "verify"},
    "followup": COMMON | WHAT | {"technician", "satisfaction", "problem_solved"},
}
WEEKDAY = {"zh": "周一", "en": "Monday"}  # 2025-03-10, the builders' day
PHONE = "0532-0000000"


def scripted(session: Session) -> Graph:
    """The builders' graph with a published plan (王师傅 comes), a technician first promised
    (张强) and two more windows to offer."""
    graph = build_graph(session)
    graph.plan.status = m.PlanStatus.PUBLISHED
    promised = m.Technician(code="T02", outlet=graph.outlet, name="张强", home_lat=36.07,
                            home_lon=120.40)
    graph.visit.committed_technician = promised
    graph.visit.windows.extend([
        m.VisitWindow(starts_at=local(14), ends_at=local(16)),
        m.VisitWindow(starts_at=local(16), ends_at=local(18)),
    ])
    session.flush()
    return graph


def cjk_count(text: str) -> int:
    """Number of Chinese characters in ``text``."""
    return len(re.findall(r"[\u4e00-\u9fff]", text))


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("kind", SCRIPT_KINDS)
def test_every_kind_has_its_elements(session: Session, kind: str, lang: str) -> None:
    """Each kind renders in each language with exactly the elements DOMAIN.md lists; each
    element's value is in the text, among them the technician's name, the weekday, the window
    and the callback number."""
    graph = scripted(session)
    script = render_script(session, graph.visit, kind, lang)
    assert set(script.elements) == EXPECTED[kind]
    for name, value in script.elements.items():
        assert value and value in script.text, name
    assert script.kind == kind and script.lang == lang and script.title
    assert PHONE in script.text
    if "technician" in EXPECTED[kind]:
        assert "王师傅" in script.text
    if "weekday" in EXPECTED[kind]:
        assert WEEKDAY[lang] in script.text and "09:00-11:00" in script.text


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("kind", SCRIPT_KINDS)
def test_scripts_can_be_said_in_about_a_minute(session: Session, kind: str, lang: str) -> None:
    """Even the longest variant (chargeable, with a charge note) stays within ~220 Chinese
    characters or ~160 English words."""
    graph = scripted(session)
    graph.product.invoice_date = None
    graph.ticket.charge_note = "上门费 50 元，配件另计"
    script = render_script(session, graph.visit, kind, lang)
    if lang == "zh":
        assert cjk_count(script.text) <= 220
    else:
        assert len(script.text.split()) <= 160


def test_customer_language_is_the_default(session: Session) -> None:
    """Without a language the script speaks the customer's."""
    graph = scripted(session)
    graph.customer.language = m.Language.EN
    assert render_script(session, graph.visit, "confirmation").lang == "en"


def test_unknown_language_names_the_field(session: Session) -> None:
    """An unknown language is refused with a ValidationError naming ``lang``."""
    graph = scripted(session)
    with pytest.raises(ValidationError) as caught:
        render_script(session, graph.visit, "confirmation", "fr")
    assert caught.value.field == "lang"


def test_unknown_kind_names_the_field(session: Session) -> None:
    """An unknown kind of script is refused with a ValidationError naming ``kind``."""
    graph = scripted(session)
    with pytest.raises(ValidationError) as caught:
        render_script(session, graph.visit, "apology_letter", "zh")
    assert caught.value.field == "kind"


@pytest.mark.parametrize("lang, words", [("zh", "收费"), ("en", "charge")])
def test_no_invoice_date_says_chargeable(session: Session, lang: str, words: str) -> None:
    """A product without an invoice date renders (no crash), gives the warranty reason and
    says the service is chargeable, with consent before the work."""
    graph = scripted(session)
    graph.product.invoice_date = None
    outcome = assess(graph.product, graph.ticket, graph.visit.day)
    script = render_script(session, graph.visit, "confirmation", lang)
    assert script.elements["warranty"] == (outcome.reason_zh if lang == "zh"
                                           else outcome.reason_en)
    assert words in script.elements["charge"]
    assert ("同意" if lang == "zh" else "consent") in script.elements["charge"]


def test_in_warranty_repair_is_free(session: Session) -> None:
    """A product inside its warranty period: the reason, the end date and no charge."""
    graph = scripted(session)
    script = render_script(session, graph.visit, "confirmation", "en")
    assert "1 June 2025" in script.elements["warranty"]
    assert "no charge" in script.elements["charge"]


def test_charge_note_is_told(session: Session) -> None:
    """A chargeable visit says the charge recorded on the ticket."""
    graph = scripted(session)
    graph.product.invoice_date = None
    graph.ticket.charge_note = "上门费 50 元"
    script = render_script(session, graph.visit, "confirmation", "zh")
    assert "上门费 50 元" in script.elements["charge"]


def test_ticket_without_product_still_renders(session: Session) -> None:
    """A ticket with no product on file renders and gives the warranty reason for that."""
    graph = scripted(session)
    graph.ticket.product = None
    session.flush()
    script = render_script(session, graph.visit, "confirmation", "en")
    assert script.elements["warranty"] == assess(None, graph.ticket, graph.visit.day).reason_en
    assert "consent" in script.elements["charge"]


@pytest.mark.parametrize("category, kind, words", [
    (m.ProductCategory.WATER_HEATER, m.TicketKind.REPAIR, "water inlet valve"),
    (m.ProductCategory.WASHING_MACHINE, m.TicketKind.REPAIR, "tap"),
    (m.ProductCategory.KITCHEN, m.TicketKind.REPAIR, "gas valve"),
    (m.ProductCategory.TV, m.TicketKind.INSTALLATION, "wall type"),
    (m.ProductCategory.AIR_CONDITIONER, m.TicketKind.REPAIR, "indoor and outdoor units"),
])
def test_preparation_depends_on_the_product(session: Session, category: m.ProductCategory,
                                            kind: m.TicketKind, words: str) -> None:
    """What the customer should prepare follows the product (and, for TVs, the work)."""
    graph = scripted(session)
    graph.product.category = category
    graph.ticket.kind = kind
    script = render_script(session, graph.visit, "confirmation", "en")
    assert words in script.elements["prepare"]


def test_delay_notice_gives_the_new_arrival(session: Session) -> None:
    """The new arrival time given by the caller (ISO text, as in a payload) is said in the
    outlet's local time, with the cause."""
    graph = scripted(session)
    arrival = local(11, 25).astimezone(ZoneInfo("UTC")).isoformat()
    script = render_script(session, graph.visit, "delay_notice", "zh",
                           extra={"new_arrival": arrival, "cause": "traffic"})
    assert script.elements["arrival"] == "11:25"
    assert script.elements["cause"] == "路上堵车"


def test_change_request_offers_up_to_three_alternatives(session: Session) -> None:
    """Alternatives given by the caller are offered, at most three, with their weekdays."""
    graph = scripted(session)
    offers = [(local(9, day=date(2025, 3, 10 + n)), local(11, day=date(2025, 3, 10 + n)))
              for n in range(1, 5)]
    script = render_script(session, graph.visit, "change_request", "en",
                           extra={"alternatives": offers})
    text = script.elements["alternatives"]
    assert "Tuesday" in text and "Wednesday" in text and "Thursday" in text
    assert "Friday" not in text


def test_handover_without_a_previous_technician_is_refused(session: Session) -> None:
    """A handover notice needs to say who was expected; without one it names the field."""
    graph = scripted(session)
    graph.visit.committed_technician = None
    session.flush()
    with pytest.raises(ValidationError) as caught:
        render_script(session, graph.visit, "handover_notice", "zh")
    assert caught.value.field == "previous_technician"


def test_window_in_a_dst_outlet_is_local(session: Session) -> None:
    """An outlet in a daylight-saving zone shows the window in its local time on the day the
    clocks change, with the right weekday."""
    graph = scripted(session)
    berlin = ZoneInfo("Europe/Berlin")
    graph.outlet.timezone = "Europe/Berlin"
    change_day = date(2025, 3, 30)  # clocks go forward at 02:00
    start = datetime.combine(change_day, time(9, 0), tzinfo=berlin)
    end = datetime.combine(change_day, time(11, 0), tzinfo=berlin)
    script = render_script(session, graph.visit, "confirmation", "en",
                           extra={"window": (start, end)})
    assert script.elements["window"] == "09:00-11:00"
    assert script.elements["weekday"] == "Sunday"
    assert "30 March" in script.elements["date"]


def test_now_makes_the_date_read_today(session: Session) -> None:
    """Given the moment of the call, a visit on the same local day reads 今天 / today."""
    graph = scripted(session)
    zh = render_script(session, graph.visit, "reconfirmation", "zh", now=local(8))
    en = render_script(session, graph.visit, "reconfirmation", "en", now=local(8))
    assert zh.elements["date"].startswith("今天")
    assert en.elements["date"].startswith("today")


@pytest.mark.parametrize("name, honorific, lang, expected", [
    ("王伟", "先生", "zh", "王先生"),
    ("欧阳娜", "女士", "zh", "欧阳女士"),
    ("张建国", "经理", "zh", "张经理"),
    ("张建国", "经理", "en", "Manager 张"),
    ("David Miller", "先生", "en", "Mr Miller"),
    ("Emma Schmidt", "女士", "zh", "Schmidt女士"),
])
def test_honorific_address(name: str, honorific: str, lang: str, expected: str) -> None:
    """Customers are addressed by surname with 先生/女士 or their title (Mr/Ms in English)."""
    assert address_customer(name, honorific, lang) == expected


def test_written_message_leaves_out_phone_talk(session: Session) -> None:
    """Rendered for a written message (SMS, e-mail), the confirmation drops the phone-only
    "do you have a minute" but keeps every element."""
    graph = scripted(session)
    spoken = render_script(session, graph.visit, "confirmation", "en")
    written = render_script(session, graph.visit, "confirmation", "en",
                            extra={"medium": "message"})
    assert "minute" in spoken.text and "minute" not in written.text
    assert set(written.elements) == EXPECTED["confirmation"]
