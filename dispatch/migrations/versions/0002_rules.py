"""service rules: tasks, holidays, calling hours, warranty and consent fields

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:46:37.315398
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "holidays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["outlet_id"],
            ["outlets.id"],
            name=op.f("fk_holidays_outlet_id_outlets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holidays")),
        sa.UniqueConstraint("outlet_id", "day", name=op.f("uq_holidays_outlet_id_day")),
    )

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("assignee_role", sa.String(length=24), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=True),
        sa.Column("due_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flag_reason", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=80), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "assignee_role IN ('dispatcher', 'technician', 'manager', 'supervisor')",
            name=op.f("ck_tasks_assignee_role_valid"),
        ),
        sa.CheckConstraint(
            "kind IN ('confirmation_call', 'reconfirm_call', 'delay_notice', 'consent_request',"
            " 'handover_notice', 'followup_call', 'charge_notice', 'escalation',"
            " 'supervisor_review')",
            name=op.f("ck_tasks_kind_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'done', 'failed', 'cancelled', 'expired')",
            name=op.f("ck_tasks_status_valid"),
        ),
        sa.CheckConstraint(
            "due_by >= due_from", name=op.f("ck_tasks_due_by_not_before_due_from")
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_tasks_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["technicians.id"], name=op.f("fk_tasks_technician_id_technicians")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["service_tickets.id"], name=op.f("fk_tasks_ticket_id_service_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_tasks_visit_id_visits"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_tasks_idempotency_key")),
    )
    op.create_index(
        op.f("ix_tasks_outlet_id_due_by"), "tasks", ["outlet_id", "due_by"], unique=False
    )
    op.create_index(op.f("ix_tasks_ticket_id"), "tasks", ["ticket_id"], unique=False)
    op.create_index(op.f("ix_tasks_visit_id"), "tasks", ["visit_id"], unique=False)

    # Batch mode: SQLite cannot add a foreign key with ALTER TABLE, so the table is rebuilt.
    # Server defaults fill the new NOT NULL columns of rows that already exist.
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("task_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notifications_task_id"), ["task_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_task_id_tasks"), "tasks", ["task_id"], ["id"]
        )

    with op.batch_alter_table("outlets") as batch_op:
        batch_op.add_column(
            sa.Column(
                "quiet_periods",
                sa.JSON(),
                nullable=False,
                server_default=sa.text("""'[["12:00", "13:30"]]'"""),
            )
        )

    with op.batch_alter_table("service_tickets") as batch_op:
        batch_op.add_column(
            sa.Column(
                "warranty_exclusions", sa.JSON(), nullable=False, server_default=sa.text("'[]'")
            )
        )
        batch_op.add_column(
            sa.Column("charge_explained_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("charge_note", sa.Text(), nullable=False, server_default=sa.text("''"))
        )
        batch_op.add_column(
            sa.Column("supervisor_flag", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("visits") as batch_op:
        batch_op.add_column(sa.Column("committed_technician_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("handover_agreed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column(
                "reconfirm_attempts", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_visits_committed_technician_id_technicians"),
            "technicians",
            ["committed_technician_id"],
            ["id"],
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("visits") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_visits_committed_technician_id_technicians"), type_="foreignkey"
        )
        batch_op.drop_column("reconfirm_attempts")
        batch_op.drop_column("handover_agreed")
        batch_op.drop_column("committed_technician_id")

    with op.batch_alter_table("service_tickets") as batch_op:
        batch_op.drop_column("supervisor_flag")
        batch_op.drop_column("charge_note")
        batch_op.drop_column("charge_explained_at")
        batch_op.drop_column("warranty_exclusions")

    with op.batch_alter_table("outlets") as batch_op:
        batch_op.drop_column("quiet_periods")

    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_notifications_task_id_tasks"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notifications_task_id"))
        batch_op.drop_column("task_id")
        batch_op.drop_column("next_attempt_at")

    op.drop_index(op.f("ix_tasks_visit_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_ticket_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_outlet_id_due_by"), table_name="tasks")
    op.drop_table("tasks")
    op.drop_table("holidays")
