"""signatures

Trusted keys per project, signature verdicts, and the projects' pull-policy columns
(require_signed, keyset_generation, the Notation trust policy).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("require_signed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("keyset_generation", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column(
                "notation_level", sa.String(length=16), nullable=False, server_default="strict"
            )
        )
        batch.add_column(sa.Column("notation_identities", sa.Text(), nullable=True))
    op.create_table(
        "trusted_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_trusted_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_keys")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_trusted_keys_project_id_name")),
    )
    op.create_table(
        "signature_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("artifact_digest", sa.String(length=150), nullable=False),
        sa.Column("signature_digest", sa.String(length=150), nullable=False),
        sa.Column("layer", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("signer", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_signature_verdicts_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["trusted_keys.id"],
            name=op.f("fk_signature_verdicts_key_id_trusted_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signature_verdicts")),
    )
    op.create_index(
        op.f("ix_signature_verdicts_repository_id_artifact_digest"),
        "signature_verdicts",
        ["repository_id", "artifact_digest"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_signature_verdicts_repository_id_artifact_digest"),
        table_name="signature_verdicts",
    )
    op.drop_table("signature_verdicts")
    op.drop_table("trusted_keys")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("notation_identities")
        batch.drop_column("notation_level")
        batch.drop_column("keyset_generation")
        batch.drop_column("require_signed")
