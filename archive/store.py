"""The persistent store of every evaluated law: one SQLite file per project.

Durability and resuming: the file is in WAL mode with ``synchronous=NORMAL``,
so a committed transaction survives the process being killed at any moment
(only a power loss can drop the last few commits, and never corrupts the
file).  Each candidate is written in one ``BEGIN IMMEDIATE`` transaction (law,
evaluation, lineage together or not at all), and ``UNIQUE(campaign_id, key)``
makes a resumed campaign that re-proposes a finished law get the existing id
back instead of a second row.

Concurrency: WAL lets ``sld archive top`` read while a campaign writes; a
busy timeout makes any writer or schema check wait for a lock instead of
failing.  One ``Archive`` may be shared by threads (calls are serialised).

Faults: a read-only, locked, damaged or non-SQLite file surfaces as an
``ArchiveError`` naming the file and the fix (``archive.connection``); readers
open the file read-only, and a writer checks it is intact before writing, so a
damaged file is never written into.

Non-finite numbers: in JSON columns they are the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"`` (see ``archive.jsoncodec``) and read back as
floats.  In the ``score`` column SQLite stores infinities as such but NaN as
NULL, so a NaN score reads back as ``None``.  ``top`` and ``front`` only
consider ``ok`` laws with a finite score.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sld.archive.connection import archive_error, damaged_message, open_connection
from sld.archive.errors import ArchiveError
from sld.archive.front import pareto_front
from sld.archive.jsoncodec import from_json, to_json
from sld.archive.records import CAMPAIGN_STATUSES, CampaignRecord, Entry, LLMCall, LLMUsage, NewEntry
from sld.archive.schema import RESULTS_TABLE, SCHEMA_VERSION, create_schema, stored_version
from sld.tasks import TaskSpec

# Where `sld discover` writes and `sld archive` reads unless --archive says otherwise.
DEFAULT_ARCHIVE = "sld-archive.sqlite"

# How long a writer or reader waits for another process's lock before giving up.
BUSY_TIMEOUT_S = 30.0

_ENTRY_SELECT = """
SELECT l.id, l.campaign_id, l.created_at, l.formula, l.key, l.srepr, l.complexity, l.n_params,
       l.proposer, l.operator, l.generation, l.island, l.rationale, l.llm_call_id,
       e.status, e.reason, e.params, e.train, e.validation, e.score, e.diagnostics, e.seconds,
       c.prompt_tokens, c.completion_tokens
FROM laws AS l
JOIN evaluations AS e ON e.law_id = l.id
LEFT JOIN llm_calls AS c ON c.id = l.llm_call_id
"""

# The best-scoring ok law of each canonical key, for one task (optionally one campaign).
# 9e999 is how SQLite spells infinity, so the range test keeps finite scores only.
_BEST_PER_KEY = """
WITH ranked AS (
    SELECT l.id, l.complexity, e.score,
           ROW_NUMBER() OVER (PARTITION BY l.key ORDER BY e.score, l.id) AS rank
    FROM laws AS l
    JOIN evaluations AS e ON e.law_id = l.id
    JOIN campaigns AS c ON c.id = l.campaign_id
    WHERE c.task = :task AND e.status = 'ok'
      AND e.score > -9e999 AND e.score < 9e999
      AND (:campaign IS NULL OR l.campaign_id = :campaign)
)
SELECT id, complexity, score FROM ranked WHERE rank = 1 ORDER BY score, id
"""


class Archive:
    """A campaign archive in the SQLite file ``path``.

    ``create=False`` opens an existing archive only (for commands that read),
    so a mistyped path gives an error instead of a new empty file.
    ``read_only=True`` (implies ``create=False``) opens it in SQLite's
    read-only mode, for commands that only read: they then work on a file or
    medium the user may not write.  ``busy_timeout_s`` (default
    ``BUSY_TIMEOUT_S``) is how long to wait for another process's lock.
    Every SQLite failure surfaces as an ``ArchiveError`` naming the file and
    the fix (``archive.connection``).
    """

    def __init__(
        self, path: str | os.PathLike, *, create: bool = True, read_only: bool = False,
        busy_timeout_s: float | None = None,
    ) -> None:
        self.path = Path(path)
        self._read_only = read_only
        self._busy_timeout_s = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        if self.path.is_dir():
            raise ArchiveError(
                f"{self.path} is a directory, not an archive file; pass a file path such as "
                f"{self.path / DEFAULT_ARCHIVE} to --archive"
            )
        if (read_only or not create) and not self.path.is_file():
            raise ArchiveError(
                f"no archive at {self.path}; run `sld discover` first or pass --archive"
            )
        try:
            self._connection = open_connection(self.path, read_only=read_only, timeout_s=self._busy_timeout_s)
            self._connection.row_factory = sqlite3.Row
            self._configure(create and not read_only)
        except sqlite3.Error as err:
            self.close()
            raise archive_error(err, self.path, busy_timeout_s=self._busy_timeout_s) from None
        except BaseException:
            self.close()
            raise

    def _configure(self, create: bool) -> None:
        connection = self._db
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = NORMAL")
        with self._read():
            version = stored_version(connection)
            foreign = version is None and connection.execute(
                "SELECT count(*) FROM sqlite_master"
            ).fetchone()[0] > 0
        if foreign:
            raise ArchiveError(
                f"{self.path} is a SQLite database of something else, not an sld archive; "
                "pass another --archive path"
            )
        if version is None and not create:
            raise ArchiveError(f"{self.path} is not an sld archive; pass another --archive path")
        if version is not None and version != SCHEMA_VERSION:
            raise ArchiveError(
                f"archive {self.path} has schema version {version} but this sld reads version "
                f"{SCHEMA_VERSION}; use the matching sld version or start a new archive"
            )
        # WAL is persistent in the file and switching needs a lock, so only a
        # writer switches, once; readers never modify the file.
        if create and connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode = WAL")
        if version is None:
            with self._write():
                if stored_version(connection) is None:  # another process may have just made it
                    create_schema(connection)
        elif not self._read_only:
            self._check_intact()
            with self._read() as db:
                has_results = db.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'campaign_results'").fetchone()
            if not has_results:  # an archive written before results were stored
                with self._write() as db:
                    db.execute(RESULTS_TABLE)

    def _check_intact(self) -> None:
        """Refuse to write into a damaged file, which could lose more of what it holds.

        ``quick_check`` reads every page once (milliseconds for thousands of laws);
        readers skip it and meet damage, if any, in the pages they read.
        """
        with self._read() as db:
            found = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if found != "ok":  # e.g. "*** in database main ***\nPage 43: btreeInitPage() returns error code 11"
            problem = " ".join(found.replace("*** in database main ***", "").split())
            raise ArchiveError(damaged_message(self.path, f"integrity check: {problem}"))

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ArchiveError(f"archive {self.path} is closed")
        return self._connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front so check-then-insert is atomic."""
        with self._lock, self._translate_errors():
            connection = self._db
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                _end(connection, "ROLLBACK")
                raise
            connection.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: several queries see the same snapshot."""
        with self._lock, self._translate_errors():
            connection = self._db
            connection.execute("BEGIN")
            try:
                yield connection
            except BaseException:
                _end(connection, "COMMIT")
                raise
            connection.execute("COMMIT")

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as err:
            raise ArchiveError(
                f"archive {self.path} refused the write ({err}); an id it refers to "
                "(campaign, parent law or LLM call) does not exist"
            ) from None
        except sqlite3.ProgrammingError:  # a bug here, not a fault of the file
            raise
        except sqlite3.DatabaseError as err:  # locked, read-only, damaged, disk full, ...
            raise archive_error(err, self.path, busy_timeout_s=self._busy_timeout_s) from None

    # -- campaigns -------------------------------------------------------------
    def create_campaign(
        self, task: str, settings: dict, seed: int, *, spec: TaskSpec | None = None
    ) -> int:
        """Start a campaign (status "running").  ``spec`` lets exports work without the task file."""
        now = _now()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO campaigns (task, settings, spec, seed, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (task, to_json(settings), spec.model_dump_json() if spec else None, int(seed), now, now),
            )
            return int(cursor.lastrowid)

    def campaign(self, campaign_id: int) -> CampaignRecord:
        with self._read() as db:
            row = db.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        if row is None:
            raise ArchiveError(f"no campaign {campaign_id} in {self.path}; see `sld archive campaigns`")
        return _campaign(row)

    def campaigns(self, task: str | None = None) -> list[CampaignRecord]:
        """Every campaign (of ``task`` if given), oldest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM campaigns WHERE ? IS NULL OR task = ? ORDER BY id", (task, task)
            ).fetchall()
        return [_campaign(r) for r in rows]

    def latest_campaign(self, task: str | None = None) -> CampaignRecord | None:
        with self._read() as db:
            row = db.execute(
                "SELECT * FROM campaigns WHERE ? IS NULL OR task = ? ORDER BY id DESC LIMIT 1",
                (task, task),
            ).fetchone()
        return _campaign(row) if row else None

    def task_spec(self, campaign_id: int) -> TaskSpec | None:
        """The task spec stored with the campaign, if the loop passed one."""
        with self._read() as db:
            row = db.execute("SELECT spec FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        if row is None:
            raise ArchiveError(f"no campaign {campaign_id} in {self.path}; see `sld archive campaigns`")
        return TaskSpec.model_validate_json(row["spec"]) if row["spec"] else None

    def set_status(self, campaign_id: int, status: str) -> None:
        if status not in CAMPAIGN_STATUSES:
            raise ValueError(f"campaign status must be one of {CAMPAIGN_STATUSES}, got {status!r}")
        with self._write() as db:
            cursor = db.execute(
                "UPDATE campaigns SET status = ?, updated_at = ? WHERE id = ?",
                (status, _now(), campaign_id),
            )
            if cursor.rowcount == 0:
                raise ArchiveError(f"no campaign {campaign_id} in {self.path}")

    # -- a campaign's result ----------------------------------------------------
    def record_result(self, campaign_id: int, document: dict) -> None:
        """Store what a finished campaign chose and reported (replacing an earlier result)."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO campaign_results (campaign_id, document, recorded_at) "
                       "VALUES (?, ?, ?)", (campaign_id, to_json(document), _now()))

    def result(self, campaign_id: int) -> dict | None:
        """The stored result of a campaign; None if it has not finished (or predates results)."""
        self.campaign(campaign_id)  # a one-line error for an unknown id
        with self._read() as db:
            exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'campaign_results'").fetchone()
            row = exists and db.execute("SELECT document FROM campaign_results WHERE campaign_id = ?",
                                        (campaign_id,)).fetchone()
        return from_json(row["document"]) if row else None

    # -- laws ------------------------------------------------------------------
    def reserve(self, campaign_id: int, entries: Sequence[NewEntry]) -> list[int]:
        """Give a batch of candidates their law ids, in batch order, before any is evaluated.

        Workers finish in any order; ids taken here follow the batch, so a
        seeded campaign numbers its laws alike on every run and machine.  Only
        the law's own fields are read (formula, key, lineage...).  A reserved law
        has no evaluation yet, and every query skips it until ``record`` stores
        one; a campaign killed meanwhile leaves it reserved, and the next
        proposal of the same law takes its id.
        """
        now = _now()
        with self._write() as db:
            return [_put_law(db, campaign_id, entry, now)[0] for entry in entries]

    def record(self, campaign_id: int, entry: NewEntry) -> int:
        """Store one evaluated candidate in one transaction and return its law id.

        A parsed law whose key the campaign already holds evaluated is not
        written again: the existing id is returned.  A reserved law gets its
        evaluation.
        """
        now = _now()
        with self._write() as db:
            law_id, evaluated = _put_law(db, campaign_id, entry, now)
            if evaluated:
                return law_id
            db.execute(
                "INSERT INTO evaluations (law_id, status, reason, params, train, validation, score, "
                "diagnostics, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (law_id, entry.status, entry.reason, to_json(entry.params), to_json(entry.train),
                 to_json(entry.validation), _real(entry.score), to_json(entry.diagnostics),
                 _real(entry.seconds)),
            )
            db.execute("UPDATE campaigns SET updated_at = ? WHERE id = ?", (now, campaign_id))
            return law_id

    def lookup_key(self, campaign_id: int, key: str) -> int | None:
        """The id of the campaign's law with canonical ``key``, if it was already evaluated."""
        with self._read() as db:
            row = db.execute("SELECT l.id FROM laws AS l JOIN evaluations AS e ON e.law_id = l.id "
                             "WHERE l.campaign_id = ? AND l.key = ?", (campaign_id, key)).fetchone()
            return int(row[0]) if row else None

    def entries(self, campaign_id: int) -> list[Entry]:
        """Every law of the campaign, in the order they were recorded."""
        return self._entries("WHERE l.campaign_id = ? ORDER BY l.id", (campaign_id,))

    def entry(self, law_id: int) -> Entry:
        found = self._entries("WHERE l.id = ?", (law_id,))
        if not found:
            raise ArchiveError(f"no law {law_id} in {self.path}; `sld archive top TASK` lists law ids")
        return found[0]

    def count(self, campaign_id: int) -> int:
        with self._read() as db:
            return db.execute(
                "SELECT count(*) FROM laws AS l JOIN evaluations AS e ON e.law_id = l.id "
                "WHERE l.campaign_id = ?", (campaign_id,)
            ).fetchone()[0]

    def top(self, task: str, n: int = 10, campaign_id: int | None = None) -> list[Entry]:
        """The ``n`` best ok laws of ``task`` by validation score, one per canonical key."""
        best = self._best_per_key(task, campaign_id)[: max(n, 0)]
        return self._entries_by_id([row["id"] for row in best])

    def front(self, task: str, campaign_id: int | None = None) -> list[Entry]:
        """The Pareto front of validation score against complexity, simplest first."""
        points = pareto_front(_Point(r["id"], r["complexity"], r["score"])
                              for r in self._best_per_key(task, campaign_id))
        return self._entries_by_id([p.id for p in points])

    def _best_per_key(self, task: str, campaign_id: int | None) -> list[sqlite3.Row]:
        with self._read() as db:
            return db.execute(_BEST_PER_KEY, {"task": task, "campaign": campaign_id}).fetchall()

    def _entries_by_id(self, ids: Sequence[int]) -> list[Entry]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        found = {e.id: e for e in self._entries(f"WHERE l.id IN ({marks})", tuple(ids))}
        return [found[i] for i in ids]

    def _entries(self, where: str, args: tuple) -> list[Entry]:
        with self._read() as db:
            rows = db.execute(_ENTRY_SELECT + where, args).fetchall()
            parents: dict[int, list[int]] = {}
            if rows:
                ids = [r["id"] for r in rows]
                for chunk in _chunks(ids, 500):
                    marks = ",".join("?" * len(chunk))
                    for link in db.execute(
                        f"SELECT law_id, parent_id FROM lineage WHERE law_id IN ({marks}) "
                        "ORDER BY law_id, position", chunk,
                    ):
                        parents.setdefault(link["law_id"], []).append(link["parent_id"])
        return [_entry(r, parents.get(r["id"], ())) for r in rows]

    # -- LLM calls -------------------------------------------------------------
    def record_llm_call(self, campaign_id: int, call: LLMCall) -> int:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO llm_calls (campaign_id, model, prompt_tokens, completion_tokens, "
                "latency_s, cost_usd, ok, error, response_format, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (campaign_id, call.model, int(call.prompt_tokens), int(call.completion_tokens),
                 _real(call.latency_s), _real(call.cost_usd), int(bool(call.ok)), call.error,
                 call.response_format, _now()),
            )
            return int(cursor.lastrowid)

    def llm_usage(self, *campaign_ids: int) -> LLMUsage:
        """Totals over the LLM calls of a campaign (or of several: a pooled campaign's restarts)."""
        marks = ",".join("?" * len(campaign_ids))
        with self._read() as db:
            row = db.execute(
                "SELECT count(*), coalesce(sum(ok = 0), 0), coalesce(sum(prompt_tokens), 0), "
                "coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd), 0.0), "
                f"coalesce(sum(latency_s), 0.0) FROM llm_calls WHERE campaign_id IN ({marks})",
                campaign_ids,
            ).fetchone()
        return LLMUsage(
            calls=row[0], failed_calls=row[1], prompt_tokens=row[2], completion_tokens=row[3],
            cost_usd=float(row[4]), latency_s=float(row[5]),
        )

    def llm_models(self, *campaign_ids: int) -> dict[str, int]:
        """How many calls the campaign (or campaigns) made to each model, most-called first."""
        marks = ",".join("?" * len(campaign_ids))
        with self._read() as db:
            rows = db.execute(
                f"SELECT model, count(*) AS calls FROM llm_calls WHERE campaign_id IN ({marks}) "
                "GROUP BY model ORDER BY calls DESC, model", campaign_ids,
            ).fetchall()
        return {row["model"]: int(row["calls"]) for row in rows}


class _Point:
    """Just what the Pareto front needs, so only the winners are loaded in full."""

    __slots__ = ("id", "complexity", "score")

    def __init__(self, id: int, complexity: int | None, score: float | None) -> None:
        self.id, self.complexity, self.score = id, complexity, score


def _end(connection: sqlite3.Connection, statement: str) -> None:
    """End a transaction a failure interrupted, unless SQLite already rolled it back.

    A failed ROLLBACK or COMMIT here would hide the failure that matters.
    """
    if connection.in_transaction:
        try:
            connection.execute(statement)
        except sqlite3.Error:
            pass


def _put_law(db: sqlite3.Connection, campaign_id: int, entry: NewEntry, now: str) -> tuple[int, bool]:
    """The law row of ``entry`` (and its lineage): its id, and whether it is evaluated already.

    A new law is inserted; a reserved one (no evaluation yet) takes this
    proposal's origin (proposer, generation, parents...), since a resumed
    campaign may reach it another way; an evaluated one is left as it is.
    """
    row = None
    if entry.key is not None:
        row = db.execute("SELECT l.id, e.law_id IS NOT NULL FROM laws AS l LEFT JOIN evaluations AS e "
                         "ON e.law_id = l.id WHERE l.campaign_id = ? AND l.key = ?",
                         (campaign_id, entry.key)).fetchone()
    if row is not None and row[1]:
        return int(row[0]), True
    origin = (entry.formula, entry.srepr, entry.complexity, entry.n_params, entry.proposer, entry.operator,
              int(entry.generation), int(entry.island), entry.rationale, entry.llm_call_id)
    if row is None:
        law_id = int(db.execute(
            "INSERT INTO laws (formula, srepr, complexity, n_params, proposer, operator, generation, island, "
            "rationale, llm_call_id, campaign_id, key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*origin, campaign_id, entry.key, now)).lastrowid)
    else:
        law_id = int(row[0])
        db.execute("UPDATE laws SET formula = ?, srepr = ?, complexity = ?, n_params = ?, proposer = ?, "
                   "operator = ?, generation = ?, island = ?, rationale = ?, llm_call_id = ? WHERE id = ?",
                   (*origin, law_id))
        db.execute("DELETE FROM lineage WHERE law_id = ?", (law_id,))
    db.executemany("INSERT INTO lineage (law_id, position, parent_id) VALUES (?, ?, ?)",
                   [(law_id, position, parent) for position, parent in enumerate(entry.parent_ids)])
    return law_id, False


def _campaign(row: sqlite3.Row) -> CampaignRecord:
    return CampaignRecord(
        id=row["id"], task=row["task"], settings=from_json(row["settings"]), seed=row["seed"],
        status=row["status"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _entry(row: sqlite3.Row, parent_ids: Sequence[int]) -> Entry:
    return Entry(
        id=row["id"], campaign_id=row["campaign_id"], created_at=row["created_at"],
        formula=row["formula"], key=row["key"], srepr=row["srepr"], complexity=row["complexity"],
        n_params=row["n_params"], proposer=row["proposer"], operator=row["operator"],
        generation=row["generation"], island=row["island"], parent_ids=tuple(parent_ids),
        rationale=row["rationale"], status=row["status"], reason=row["reason"],
        params=from_json(row["params"]), train=from_json(row["train"]),
        validation=from_json(row["validation"]), score=row["score"],
        diagnostics=from_json(row["diagnostics"]), seconds=row["seconds"],
        llm_call_id=row["llm_call_id"], prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
    )


def _real(value: float | None) -> float | None:
    """A float for a REAL column (SQLite turns NaN into NULL by itself)."""
    return None if value is None else float(value)


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
