"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 16:31:18.975879
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("entity_type", sa.String(length=80), nullable=False),
        sa.Column("entity_id", sa.String(length=80), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"], unique=False)
    op.create_index(
        op.f("ix_audit_events_entity_type_entity_id"),
        "audit_events",
        ["entity_type", "entity_id"],
        unique=False,
    )

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("honorific", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("phone_alt", sa.String(length=40), nullable=True),
        sa.Column("address", sa.String(length=400), nullable=False),
        sa.Column("district", sa.String(length=100), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("language", sa.String(length=24), nullable=False),
        sa.Column("calling_start", sa.Time(), nullable=True),
        sa.Column("calling_end", sa.Time(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.CheckConstraint("language IN ('zh', 'en')", name=op.f("ck_customers_language_valid")),
        sa.CheckConstraint(
            "calling_start IS NULL OR calling_end IS NULL OR calling_end > calling_start",
            name=op.f("ck_customers_calling_end_after_calling_start"),
        ),
        sa.CheckConstraint("lat BETWEEN -90 AND 90", name=op.f("ck_customers_lat_range")),
        sa.CheckConstraint("lon BETWEEN -180 AND 180", name=op.f("ck_customers_lon_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("code", name=op.f("uq_customers_code")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=24), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("template", sa.String(length=80), nullable=False),
        sa.Column("language", sa.String(length=24), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latest_useful", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "channel IN ('inbox', 'email', 'sms')", name=op.f("ck_notifications_channel_valid")
        ),
        sa.CheckConstraint(
            "language IN ('zh', 'en')", name=op.f("ck_notifications_language_valid")
        ),
        sa.CheckConstraint(
            "recipient_kind IN ('customer', 'technician', 'user')",
            name=op.f("ck_notifications_recipient_kind_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'cancelled', 'expired')",
            name=op.f("ck_notifications_status_valid"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notifications_attempts_non_negative")),
        sa.CheckConstraint(
            "latest_useful IS NULL OR latest_useful >= not_before",
            name=op.f("ck_notifications_latest_useful_after"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notifications_idempotency_key")),
    )
    op.create_index(
        op.f("ix_notifications_status_not_before"),
        "notifications",
        ["status", "not_before"],
        unique=False,
    )

    op.create_table(
        "outlets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=400), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("business_open", sa.Time(), nullable=False),
        sa.Column("business_close", sa.Time(), nullable=False),
        sa.Column("calling_start", sa.Time(), nullable=False),
        sa.Column("calling_end", sa.Time(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("speed_kmh", sa.Float(), nullable=False),
        sa.Column("detour_factor", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "business_open IS NULL OR business_close IS NULL OR business_close > business_open",
            name=op.f("ck_outlets_business_close_after_business_open"),
        ),
        sa.CheckConstraint(
            "calling_start IS NULL OR calling_end IS NULL OR calling_end > calling_start",
            name=op.f("ck_outlets_calling_end_after_calling_start"),
        ),
        sa.CheckConstraint("detour_factor >= 1", name=op.f("ck_outlets_detour_factor_range")),
        sa.CheckConstraint("lat BETWEEN -90 AND 90", name=op.f("ck_outlets_lat_range")),
        sa.CheckConstraint("lon BETWEEN -180 AND 180", name=op.f("ck_outlets_lon_range")),
        sa.CheckConstraint("speed_kmh > 0", name=op.f("ck_outlets_speed_kmh_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outlets")),
        sa.UniqueConstraint("code", name=op.f("uq_outlets_code")),
    )
    op.create_table(
        "skills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skills")),
        sa.UniqueConstraint("code", name=op.f("uq_skills_code")),
    )
    op.create_table(
        "customer_products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=80), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("brand", sa.String(length=80), nullable=False),
        sa.Column("model", sa.String(length=80), nullable=False),
        sa.Column("invoice_date", sa.Date(), nullable=True),
        sa.Column("warranty_months", sa.Integer(), nullable=False),
        sa.Column("main_parts_warranty_months", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "category IN ('air_conditioner', 'water_heater', 'washing_machine', 'refrigerator',"
            " 'tv', 'kitchen', 'water_purifier')",
            name=op.f("ck_customer_products_category_valid"),
        ),
        sa.CheckConstraint(
            "main_parts_warranty_months >= 0",
            name=op.f("ck_customer_products_main_parts_warranty_months_non_negative"),
        ),
        sa.CheckConstraint(
            "warranty_months >= 0", name=op.f("ck_customer_products_warranty_months_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_products_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_products")),
        sa.UniqueConstraint("serial", name=op.f("uq_customer_products_serial")),
    )
    op.create_index(
        op.f("ix_customer_products_customer_id"), "customer_products", ["customer_id"], unique=False
    )

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kpis", sa.JSON(), nullable=False),
        sa.Column("objective", sa.JSON(), nullable=False),
        sa.Column("solver_stats", sa.JSON(), nullable=False),
        sa.Column("input_digest", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'superseded')", name=op.f("ck_plans_status_valid")
        ),
        sa.CheckConstraint("number > 0", name=op.f("ck_plans_number_positive")),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_plans_outlet_id_outlets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint(
            "outlet_id", "day", "number", name=op.f("uq_plans_outlet_id_day_number")
        ),
    )
    op.create_index(
        op.f("ix_plans_outlet_id_day_status"), "plans", ["outlet_id", "day", "status"], unique=False
    )

    op.create_table(
        "technicians",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("home_address", sa.String(length=400), nullable=False),
        sa.Column("home_lat", sa.Float(), nullable=False),
        sa.Column("home_lon", sa.Float(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("duration_factor", sa.Float(), nullable=False),
        sa.Column("max_visits", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "duration_factor > 0", name=op.f("ck_technicians_duration_factor_positive")
        ),
        sa.CheckConstraint(
            "home_lat BETWEEN -90 AND 90", name=op.f("ck_technicians_home_lat_range")
        ),
        sa.CheckConstraint(
            "home_lon BETWEEN -180 AND 180", name=op.f("ck_technicians_home_lon_range")
        ),
        sa.CheckConstraint("max_visits > 0", name=op.f("ck_technicians_max_visits_positive")),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_technicians_outlet_id_outlets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technicians")),
        sa.UniqueConstraint("code", name=op.f("uq_technicians_code")),
    )
    op.create_index(op.f("ix_technicians_outlet_id"), "technicians", ["outlet_id"], unique=False)

    op.create_table(
        "product_repairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("repaired_on", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("fixed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["customer_products.id"],
            name=op.f("fk_product_repairs_product_id_customer_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_repairs")),
    )
    op.create_index(
        op.f("ix_product_repairs_product_id"), "product_repairs", ["product_id"], unique=False
    )

    op.create_table(
        "service_tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("symptom", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("sla_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "channel IN ('phone', 'wechat', 'web', 'dealer')",
            name=op.f("ck_service_tickets_channel_valid"),
        ),
        sa.CheckConstraint(
            "kind IN ('installation', 'repair', 'maintenance', 'follow_up')",
            name=op.f("ck_service_tickets_kind_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'scheduled', 'in_progress', 'resolved', 'closed', 'cancelled')",
            name=op.f("ck_service_tickets_status_valid"),
        ),
        sa.CheckConstraint(
            "escalation_level BETWEEN 0 AND 2",
            name=op.f("ck_service_tickets_escalation_level_range"),
        ),
        sa.CheckConstraint(
            "priority BETWEEN 1 AND 4", name=op.f("ck_service_tickets_priority_range")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_service_tickets_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_service_tickets_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["customer_products.id"],
            name=op.f("fk_service_tickets_product_id_customer_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_tickets")),
        sa.UniqueConstraint("code", name=op.f("uq_service_tickets_code")),
    )
    op.create_index(
        op.f("ix_service_tickets_customer_id"), "service_tickets", ["customer_id"], unique=False
    )
    op.create_index(
        op.f("ix_service_tickets_outlet_id_status"),
        "service_tickets",
        ["outlet_id", "status"],
        unique=False,
    )

    op.create_table(
        "technician_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lunch_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lunch_window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lunch_minutes", sa.Integer(), nullable=False),
        sa.Column("start_place", sa.String(length=24), nullable=False),
        sa.Column("end_place", sa.String(length=24), nullable=False),
        sa.Column("absent", sa.Boolean(), nullable=False),
        sa.Column("absence_reason", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "end_place IN ('home', 'outlet')", name=op.f("ck_technician_shifts_end_place_valid")
        ),
        sa.CheckConstraint(
            "start_place IN ('home', 'outlet')", name=op.f("ck_technician_shifts_start_place_valid")
        ),
        sa.CheckConstraint(
            "lunch_minutes >= 0", name=op.f("ck_technician_shifts_lunch_minutes_non_negative")
        ),
        sa.CheckConstraint(
            "lunch_window_start IS NULL OR lunch_window_end IS NULL OR"
            " lunch_window_end > lunch_window_start",
            name=op.f("ck_technician_shifts_lunch_window_end_after_lunch_window_start"),
        ),
        sa.CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at",
            name=op.f("ck_technician_shifts_ends_at_after_starts_at"),
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["technicians.id"],
            name=op.f("fk_technician_shifts_technician_id_technicians"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technician_shifts")),
        sa.UniqueConstraint(
            "technician_id", "day", name=op.f("uq_technician_shifts_technician_id_day")
        ),
    )
    op.create_table(
        "technician_skills",
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.CheckConstraint("level BETWEEN 1 AND 3", name=op.f("ck_technician_skills_level_range")),
        sa.ForeignKeyConstraint(
            ["skill_id"], ["skills.id"], name=op.f("fk_technician_skills_skill_id_skills")
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["technicians.id"],
            name=op.f("fk_technician_skills_technician_id_technicians"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("technician_id", "skill_id", name=op.f("pk_technician_skills")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=True),
        sa.Column("outlet_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=24), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("language IN ('zh', 'en')", name=op.f("ck_users_language_valid")),
        sa.CheckConstraint(
            "role <> 'technician' OR technician_id IS NOT NULL",
            name=op.f("ck_users_technician_role_has_link"),
        ),
        sa.CheckConstraint(
            "role IN ('admin', 'manager', 'dispatcher', 'technician')",
            name=op.f("ck_users_role_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_users_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["technicians.id"], name=op.f("fk_users_technician_id_technicians")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("technician_id", name=op.f("uq_users_technician_id")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_tokens_digest")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)

    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("agreed_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agreed_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmation_status", sa.String(length=24), nullable=False),
        sa.Column("pinned_technician_id", sa.Integer(), nullable=True),
        sa.Column("pinned_start_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pinned_start_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("actual_arrival", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "confirmation_status IN ('unconfirmed', 'proposed', 'confirmed', 'reconfirmed',"
            " 'declined', 'unreachable', 'needs_consent')",
            name=op.f("ck_visits_confirmation_status_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('planned', 'en_route', 'on_site', 'done', 'not_finished', 'no_show',"
            " 'cancelled')",
            name=op.f("ck_visits_status_valid"),
        ),
        sa.CheckConstraint(
            "agreed_start IS NULL OR agreed_end IS NULL OR agreed_end > agreed_start",
            name=op.f("ck_visits_agreed_end_after_agreed_start"),
        ),
        sa.CheckConstraint(
            "duration_minutes > 0", name=op.f("ck_visits_duration_minutes_positive")
        ),
        sa.CheckConstraint(
            "pinned_start_from IS NULL OR pinned_start_to IS NULL OR"
            " pinned_start_to > pinned_start_from",
            name=op.f("ck_visits_pinned_start_to_after_from"),
        ),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name=op.f("ck_visits_priority_range")),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_visits_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["pinned_technician_id"],
            ["technicians.id"],
            name=op.f("fk_visits_pinned_technician_id_technicians"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["service_tickets.id"], name=op.f("fk_visits_ticket_id_service_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
        sa.UniqueConstraint("code", name=op.f("uq_visits_code")),
    )
    op.create_index(op.f("ix_visits_outlet_id_day"), "visits", ["outlet_id", "day"], unique=False)
    op.create_index(op.f("ix_visits_ticket_id"), "visits", ["ticket_id"], unique=False)

    op.create_table(
        "confirmation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("outcome", sa.String(length=80), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "channel IN ('phone', 'wechat', 'sms', 'email', 'web', 'in_person', 'system')",
            name=op.f("ck_confirmation_events_channel_valid"),
        ),
        sa.CheckConstraint(
            "from_status IN ('unconfirmed', 'proposed', 'confirmed', 'reconfirmed', 'declined',"
            " 'unreachable', 'needs_consent')",
            name=op.f("ck_confirmation_events_from_status_valid"),
        ),
        sa.CheckConstraint(
            "to_status IN ('unconfirmed', 'proposed', 'confirmed', 'reconfirmed', 'declined',"
            " 'unreachable', 'needs_consent')",
            name=op.f("ck_confirmation_events_to_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_confirmation_events_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confirmation_events")),
    )
    op.create_index(
        op.f("ix_confirmation_events_visit_id"), "confirmation_events", ["visit_id"], unique=False
    )

    op.create_table(
        "plan_stops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("arrival_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting_seconds", sa.Integer(), nullable=False),
        sa.Column("travel_seconds", sa.Integer(), nullable=False),
        sa.Column("travel_meters", sa.Integer(), nullable=False),
        sa.Column("late_seconds", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'visit' AND visit_id IS NOT NULL) OR (kind = 'break' AND visit_id IS NULL)",
            name=op.f("ck_plan_stops_visit_matches_kind"),
        ),
        sa.CheckConstraint("kind IN ('visit', 'break')", name=op.f("ck_plan_stops_kind_valid")),
        sa.CheckConstraint(
            "end_at >= start_at", name=op.f("ck_plan_stops_end_at_not_before_start")
        ),
        sa.CheckConstraint(
            "late_seconds >= 0", name=op.f("ck_plan_stops_late_seconds_non_negative")
        ),
        sa.CheckConstraint("sequence >= 0", name=op.f("ck_plan_stops_sequence_non_negative")),
        sa.CheckConstraint(
            "start_at >= arrival_at", name=op.f("ck_plan_stops_start_at_not_before_arrival")
        ),
        sa.CheckConstraint(
            "travel_meters >= 0", name=op.f("ck_plan_stops_travel_meters_non_negative")
        ),
        sa.CheckConstraint(
            "travel_seconds >= 0", name=op.f("ck_plan_stops_travel_seconds_non_negative")
        ),
        sa.CheckConstraint(
            "waiting_seconds >= 0", name=op.f("ck_plan_stops_waiting_seconds_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_plan_stops_plan_id_plans"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["technicians.id"],
            name=op.f("fk_plan_stops_technician_id_technicians"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_plan_stops_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_stops")),
        sa.UniqueConstraint(
            "plan_id",
            "technician_id",
            "sequence",
            name=op.f("uq_plan_stops_plan_id_technician_id_sequence"),
        ),
    )
    op.create_index(
        op.f("ix_plan_stops_technician_id"), "plan_stops", ["technician_id"], unique=False
    )
    op.create_index(op.f("ix_plan_stops_visit_id"), "plan_stops", ["visit_id"], unique=False)

    op.create_table(
        "service_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("fault_found", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("parts_used", sa.JSON(), nullable=False),
        sa.Column("work_done", sa.Text(), nullable=False),
        sa.Column("customer_verified", sa.Boolean(), nullable=False),
        sa.Column("verified_name", sa.String(length=100), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("feedback", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_service_records_rating_range")),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["technicians.id"],
            name=op.f("fk_service_records_technician_id_technicians"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_service_records_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_records")),
        sa.UniqueConstraint("visit_id", name=op.f("uq_service_records_visit_id")),
    )
    op.create_index(
        op.f("ix_service_records_technician_id"), "service_records", ["technician_id"], unique=False
    )

    op.create_table(
        "unassigned_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("reason_params", sa.JSON(), nullable=False),
        sa.Column("reason_zh", sa.Text(), nullable=False),
        sa.Column("reason_en", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_unassigned_visits_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_unassigned_visits_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unassigned_visits")),
        sa.UniqueConstraint(
            "plan_id", "visit_id", name=op.f("uq_unassigned_visits_plan_id_visit_id")
        ),
    )
    op.create_index(
        op.f("ix_unassigned_visits_visit_id"), "unassigned_visits", ["visit_id"], unique=False
    )

    op.create_table(
        "visit_skills",
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.Integer(), nullable=False),
        sa.Column("min_level", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "min_level BETWEEN 1 AND 3", name=op.f("ck_visit_skills_min_level_range")
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"], ["skills.id"], name=op.f("fk_visit_skills_skill_id_skills")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_visit_skills_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("visit_id", "skill_id", name=op.f("pk_visit_skills")),
    )
    op.create_table(
        "visit_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at",
            name=op.f("ck_visit_windows_ends_at_after_starts_at"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_visit_windows_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_windows")),
        sa.UniqueConstraint(
            "visit_id", "starts_at", name=op.f("uq_visit_windows_visit_id_starts_at")
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("visit_windows")
    op.drop_table("visit_skills")
    op.drop_table("unassigned_visits")
    op.drop_table("service_records")
    op.drop_table("plan_stops")
    op.drop_table("confirmation_events")
    op.drop_table("visits")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("technician_skills")
    op.drop_table("technician_shifts")
    op.drop_table("service_tickets")
    op.drop_table("product_repairs")
    op.drop_table("technicians")
    op.drop_table("plans")
    op.drop_table("customer_products")
    op.drop_table("skills")
    op.drop_table("outlets")
    op.drop_table("notifications")
    op.drop_table("customers")
    op.drop_table("audit_events")
