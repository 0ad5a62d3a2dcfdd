"""Readable, translated names for the codes the pages show."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

LABELS = {
    # confirmation
    "unconfirmed": _l("Not confirmed"),
    "proposed": _l("Proposed"),
    "confirmed": _l("Confirmed"),
    "reconfirmed": _l("Re-confirmed"),
    "declined": _l("Declined"),
    "unreachable": _l("Unreachable"),
    "needs_consent": _l("Needs consent"),
    # live status
    "planned": _l("Planned"),
    "en_route": _l("On the way"),
    "on_site": _l("On site"),
    "done": _l("Done"),
    "not_finished": _l("Could not finish"),
    "no_show": _l("Customer not home"),
    "cancelled": _l("Cancelled"),
    # visit kinds
    "installation": _l("Installation"),
    "repair": _l("Repair"),
    "maintenance": _l("Maintenance"),
    "follow_up": _l("Follow-up"),
    # products
    "air_conditioner": _l("Air conditioner"),
    "water_heater": _l("Water heater"),
    "washing_machine": _l("Washing machine"),
    "refrigerator": _l("Refrigerator"),
    "tv": _l("TV"),
    "kitchen": _l("Kitchen appliance"),
    "water_purifier": _l("Water purifier"),
}


def label(code: str) -> str:
    """The reader's-language name of a code, or the code itself when it has none."""
    text = LABELS.get(code)
    return str(text) if text is not None else code
