"""vulndb

The vulnerability database: imports (generations) per source, advisories and their
affected packages with OSV ranges.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 14:55:36.732934
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vulndb_advisories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("vuln_id", sa.String(length=255), nullable=False),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("cvss_score", sa.Float(), nullable=True),
        sa.Column("cvss_vector", sa.String(length=255), nullable=True),
        sa.Column("links", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_advisories")),
    )
    with op.batch_alter_table("vulndb_advisories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vulndb_advisories_import_id"), ["import_id"], unique=False
        )

    op.create_table(
        "vulndb_affected",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("advisory_id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("ecosystem", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ranges", sa.Text(), nullable=False),
        sa.Column("versions", sa.Text(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_affected")),
    )
    with op.batch_alter_table("vulndb_affected", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vulndb_affected_advisory_id"), ["advisory_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_vulndb_affected_ecosystem_name_import_id"),
            ["ecosystem", "name", "import_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_vulndb_affected_import_id"), ["import_id"], unique=False
        )

    op.create_table(
        "vulndb_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("advisories", sa.Integer(), nullable=False),
        sa.Column("packages", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_imports")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "vulndb_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("advisories", sa.Integer(), nullable=False),
        sa.Column("packages", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_vulndb_sources_name")),
    )


def downgrade() -> None:
    op.drop_table("vulndb_sources")
    op.drop_table("vulndb_imports")
    with op.batch_alter_table("vulndb_affected", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vulndb_affected_import_id"))
        batch_op.drop_index(batch_op.f("ix_vulndb_affected_ecosystem_name_import_id"))
        batch_op.drop_index(batch_op.f("ix_vulndb_affected_advisory_id"))

    op.drop_table("vulndb_affected")
    with op.batch_alter_table("vulndb_advisories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vulndb_advisories_import_id"))

    op.drop_table("vulndb_advisories")
