"""Add workflow runs, with an index for the dashboard's recent-runs query.

Revision ID: 8b61e0a4c2f9
Revises: 3f2a9c1d7b44
Create Date: 2024-06-18 16:40:27
"""

import sqlalchemy as sa
from alembic import op

revision = "8b61e0a4c2f9"
down_revision = "3f2a9c1d7b44"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_runs",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("workflow_id", sa.BigInteger, sa.ForeignKey("workflows.id"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text),
    )
    op.create_index("ix_workflow_runs_started_at", "workflow_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_workflow_runs_started_at", table_name="workflow_runs")
    op.drop_table("workflow_runs")
