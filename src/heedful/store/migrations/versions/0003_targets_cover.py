"""A covering index on feedback_targets for reading a feedback's targets without the table.

A build reads each preference's two targets by (feedback_id, position); the
primary key finds the row but then fetches `response_id` from the table, a
second B-tree walk per target. With `response_id` in the index the lookup is
index-only (see `heedful.build.load.pair_query`): the 1M-row pair read went
from 2.4 to 1.9 CPU-seconds on SQLite. It costs one more index entry per
target on ingest, within noise in bench/ingest.py (20k rows, 3 runs each:
SDK 9,100 vs 9,070 records per CPU-second, CLI 5,430 vs 5,430); creating it
on an existing 1M-row store takes about 2 s.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"

NAME = "ix_feedback_targets_cover"


def upgrade() -> None:
    op.create_index(NAME, "feedback_targets", ["feedback_id", "position", "response_id"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="feedback_targets")
