"""The archive's SQLite schema and its version.

Tables: ``campaigns`` (one discovery run), ``llm_calls``, ``laws`` (a
candidate's text and structure), ``evaluations`` (its fit and scores, one row
per law; a law without one is *reserved*: its id taken in batch order, its
evaluation not finished, and every query skips it), ``lineage`` (ordered parent links), ``campaign_results`` (what a
finished campaign chose and reported, one JSON document per campaign).  Dict-valued columns hold JSON
text written by ``archive.jsoncodec``.  ``UNIQUE(campaign_id, key)`` is what
makes resuming safe: a parsed law can never be stored twice in one campaign,
while rejected proposals (key NULL) are all kept, since SQLite treats NULLs
as distinct.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    settings TEXT NOT NULL,
    spec TEXT,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted', 'failed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS campaigns_task ON campaigns (task);
CREATE TABLE IF NOT EXISTS llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL,
    cost_usd REAL,
    ok INTEGER NOT NULL,
    error TEXT NOT NULL,
    response_format TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS llm_calls_campaign ON llm_calls (campaign_id);
CREATE TABLE IF NOT EXISTS laws (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    formula TEXT NOT NULL,
    key TEXT,
    srepr TEXT,
    complexity INTEGER,
    n_params INTEGER,
    proposer TEXT NOT NULL,
    operator TEXT NOT NULL,
    generation INTEGER NOT NULL,
    island INTEGER NOT NULL,
    rationale TEXT NOT NULL,
    llm_call_id INTEGER REFERENCES llm_calls (id),
    created_at TEXT NOT NULL,
    UNIQUE (campaign_id, key)
);
CREATE TABLE IF NOT EXISTS evaluations (
    law_id INTEGER PRIMARY KEY REFERENCES laws (id),
    status TEXT NOT NULL CHECK (status IN ('ok', 'rejected', 'failed')),
    reason TEXT NOT NULL,
    params TEXT NOT NULL,
    train TEXT NOT NULL,
    validation TEXT NOT NULL,
    score REAL,
    diagnostics TEXT NOT NULL,
    seconds REAL
);
CREATE INDEX IF NOT EXISTS evaluations_score ON evaluations (status, score);
CREATE TABLE IF NOT EXISTS lineage (
    law_id INTEGER NOT NULL REFERENCES laws (id),
    position INTEGER NOT NULL,
    parent_id INTEGER NOT NULL REFERENCES laws (id),
    PRIMARY KEY (law_id, position)
);
CREATE INDEX IF NOT EXISTS lineage_parent ON lineage (parent_id);
"""

# Added within schema version 1: older archives gain it when a writer opens them,
# and readers of an archive without it see no results.
RESULTS_TABLE = """
CREATE TABLE IF NOT EXISTS campaign_results (
    campaign_id INTEGER PRIMARY KEY REFERENCES campaigns (id),
    document TEXT NOT NULL,
    recorded_at TEXT NOT NULL
)
"""


def stored_version(connection: sqlite3.Connection) -> int | None:
    """The schema version written in the file, or None for a file without the archive's tables."""
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return None
    row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
    return row[0]


def create_schema(connection: sqlite3.Connection) -> None:
    """Create every table inside the caller's transaction and record the version."""
    for statement in _TABLES.split(";"):
        if statement.strip():
            connection.execute(statement)
    connection.execute(RESULTS_TABLE)
    connection.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
