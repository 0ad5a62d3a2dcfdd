"""board: background solve jobs and the technicians' last known positions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:48:05.101078
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "solve_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("started_by", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("time_limit_seconds", sa.Float(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'stopped')",
            name=op.f("ck_solve_jobs_status_valid"),
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 1", name=op.f("ck_solve_jobs_progress_range")),
        sa.CheckConstraint(
            "time_limit_seconds > 0", name=op.f("ck_solve_jobs_time_limit_seconds_positive")
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_solve_jobs_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_solve_jobs_plan_id_plans"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_solve_jobs")),
    )
    op.create_index(
        op.f("ix_solve_jobs_outlet_id_day_status"), "solve_jobs",
        ["outlet_id", "day", "status"], unique=False,
    )

    with op.batch_alter_table("technicians") as batch_op:
        batch_op.add_column(sa.Column("last_lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("last_lon", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("technicians") as batch_op:
        batch_op.drop_column("last_seen_at")
        batch_op.drop_column("last_lon")
        batch_op.drop_column("last_lat")

    op.drop_index(op.f("ix_solve_jobs_outlet_id_day_status"), table_name="solve_jobs")
    op.drop_table("solve_jobs")
