"""Create the workflows table.

Revision ID: 3f2a9c1d7b44
Revises:
Create Date: 2024-05-02 09:14:11
"""

import sqlalchemy as sa
from alembic import op

revision = "3f2a9c1d7b44"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("repo", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("workflows")
