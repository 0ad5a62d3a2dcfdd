"""What a kind of work on a kind of product usually takes: the skills and a duration estimate.

The booking form suggests these; the dispatcher may change them. The figures follow the trade
(a split AC installation takes hours and work at height, a washer repair half an hour).
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.errors import ValidationError
from dispatch.models import ProductCategory, TicketKind


@dataclass(frozen=True)
class WorkSuggestion:
    """The skills (code -> minimum level) and minutes suggested for a kind of work."""

    skills: dict[str, int]
    duration_minutes: int


K, C = TicketKind, ProductCategory

#: (kind, category) -> (skills at level 1, typical minutes). Follow-ups need the category's
#: basic skill only.
WORK: dict[tuple[TicketKind, ProductCategory], tuple[tuple[str, ...], int]] = {
    (K.INSTALLATION, C.AIR_CONDITIONER): (("ac_install", "height_work", "refrigerant"), 150),
    (K.REPAIR, C.AIR_CONDITIONER): (("ac_repair", "refrigerant"), 60),
    (K.MAINTENANCE, C.AIR_CONDITIONER): (("ac_repair",), 45),
    (K.INSTALLATION, C.WATER_HEATER): (("water_heater", "plumbing"), 60),
    (K.REPAIR, C.WATER_HEATER): (("water_heater",), 45),
    (K.MAINTENANCE, C.WATER_HEATER): (("water_heater",), 45),
    (K.INSTALLATION, C.WASHING_MACHINE): (("washer", "plumbing"), 45),
    (K.REPAIR, C.WASHING_MACHINE): (("washer",), 45),
    (K.MAINTENANCE, C.WASHING_MACHINE): (("washer",), 30),
    (K.INSTALLATION, C.REFRIGERATOR): (("fridge",), 30),
    (K.REPAIR, C.REFRIGERATOR): (("fridge", "refrigerant"), 60),
    (K.MAINTENANCE, C.REFRIGERATOR): (("fridge",), 30),
    (K.INSTALLATION, C.TV): (("tv_mount",), 45),
    (K.REPAIR, C.TV): (("tv_mount",), 45),
    (K.MAINTENANCE, C.TV): (("tv_mount",), 30),
    (K.INSTALLATION, C.KITCHEN): (("kitchen",), 60),
    (K.REPAIR, C.KITCHEN): (("kitchen",), 45),
    (K.MAINTENANCE, C.KITCHEN): (("kitchen",), 45),
    (K.INSTALLATION, C.WATER_PURIFIER): (("water_purifier", "plumbing"), 45),
    (K.REPAIR, C.WATER_PURIFIER): (("water_purifier",), 30),
    (K.MAINTENANCE, C.WATER_PURIFIER): (("water_purifier",), 30),
}

#: The basic skill of each category (a follow-up visit needs only this).
BASIC_SKILL: dict[ProductCategory, str] = {
    C.AIR_CONDITIONER: "ac_repair",
    C.WATER_HEATER: "water_heater",
    C.WASHING_MACHINE: "washer",
    C.REFRIGERATOR: "fridge",
    C.TV: "tv_mount",
    C.KITCHEN: "kitchen",
    C.WATER_PURIFIER: "water_purifier",
}
FOLLOW_UP_MINUTES = 30

#: Symptoms that call for a gas certificate whatever the kind ("gas" in either language).
GAS_WORDS = ("燃气", "煤气", "gas")


def suggest_work(kind: TicketKind | str, category: ProductCategory | str,
                 symptom: str = "") -> WorkSuggestion:
    """The skills and duration to suggest for ``kind`` of work on a ``category`` product."""
    kind_value = _member(TicketKind, kind, "kind")
    category_value = _member(ProductCategory, category, "category")
    if kind_value == K.FOLLOW_UP:
        skills: tuple[str, ...] = (BASIC_SKILL[category_value],)
        minutes = FOLLOW_UP_MINUTES
    else:
        skills, minutes = WORK[(kind_value, category_value)]
    if any(word in symptom.lower() for word in GAS_WORDS) and \
            category_value in (C.WATER_HEATER, C.KITCHEN):
        skills = (*skills, "gas_cert")
    return WorkSuggestion({code: 1 for code in skills}, minutes)


def _member(enum_class: type[TicketKind] | type[ProductCategory], value: object,
            field: str) -> TicketKind | ProductCategory:
    try:
        return enum_class(value)  # type: ignore[arg-type]
    except ValueError as exc:
        allowed = ", ".join(member.value for member in enum_class)
        raise ValidationError(f"{value!r} is not one of: {allowed}",
                              f"{value!r} 不是允许的取值（{allowed}）", field=field) from exc
