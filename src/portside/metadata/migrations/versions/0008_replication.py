"""replication

Registry endpoints (credentials encrypted), replication rules, their runs and per-artifact
results.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("verify_tls", sa.Boolean(), nullable=False),
        sa.Column("ca_pem", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_registry_endpoints_name")),
    )
    op.create_table(
        "replication_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("repositories", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("resources", sa.String(length=16), nullable=False),
        sa.Column("destination_namespace", sa.String(length=255), nullable=True),
        sa.Column("flattening", sa.Integer(), nullable=False),
        sa.Column("copy_deletions", sa.Boolean(), nullable=False),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("bandwidth_kbps", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["registry_endpoints.id"],
            name=op.f("fk_replication_rules_endpoint_id_registry_endpoints"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replication_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_replication_rules_name")),
    )
    op.create_table(
        "replication_runs",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_replication_runs_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["replication_rules.id"],
            name=op.f("fk_replication_runs_rule_id_replication_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_replication_runs")),
    )
    op.create_index(
        op.f("ix_replication_runs_rule_id"), "replication_runs", ["rule_id"], unique=False
    )
    op.create_table(
        "replication_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("blobs", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_replication_items_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replication_items")),
    )
    op.create_index(
        op.f("ix_replication_items_job_id_id"), "replication_items", ["job_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_replication_items_job_id_id"), table_name="replication_items")
    op.drop_table("replication_items")
    op.drop_index(op.f("ix_replication_runs_rule_id"), table_name="replication_runs")
    op.drop_table("replication_runs")
    op.drop_table("replication_rules")
    op.drop_table("registry_endpoints")
