"""The SQLite archive: round trips, dedup, queries, durability under SIGKILL, and `sld archive`.

All laws here are synthetic records (made-up keys and scores); no real data is involved.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sld.archive import (
    DEFAULT_ARCHIVE,
    Archive,
    ArchiveError,
    LLMCall,
    NewEntry,
    record_to_dict,
)
from sld.archive.front import pareto_front
from sld.archive.jsoncodec import from_json, to_json
from sld.archive.schema import SCHEMA_VERSION
from sld.discovery.cli import app as cli

REPO = Path(__file__).resolve().parents[1]


def sld(argv: list[str]) -> int:
    """Run `sld` with only the archive command registered (others may be mid-rewrite)."""
    with mock.patch.object(cli, "COMMAND_MODULES", ("sld.discovery.cli.commands.archive_cmd",)):
        return cli.main(argv)


def new_entry(**overrides) -> NewEntry:
    """A synthetic evaluated law; tests override what they examine."""
    values = dict(
        formula="A/N**alpha + E", key="k-default", srepr="Add(...)", complexity=7, n_params=3,
        proposer="offline", operator="library", generation=0, island=0, parent_ids=(),
        rationale="planted", status="ok", reason="",
        params={"g1": {"A": 2.0, "alpha": 0.3, "E": 1.5}}, train={"nmse": 0.01},
        validation={"nmse": 0.02}, score=0.02, diagnostics={"starts": 8}, seconds=0.1,
    )
    values.update(overrides)
    return NewEntry(**values)


def new_fields(entry) -> dict:
    return {f.name: getattr(entry, f.name) for f in dataclasses.fields(NewEntry)}


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "archive.sqlite"


@pytest.fixture
def archive(path):
    with Archive(path) as opened:
        yield opened


# -- round trips ---------------------------------------------------------------------------
def test_campaign_round_trip_and_status(archive, make_spec):
    spec = make_spec()
    first = archive.create_campaign("synthetic", {"islands": 2, "model": "m"}, seed=7, spec=spec)
    second = archive.create_campaign("other", {}, seed=1)
    record = archive.campaign(first)
    assert (record.task, record.settings, record.seed, record.status) == (
        "synthetic", {"islands": 2, "model": "m"}, 7, "running")
    assert archive.task_spec(first) == spec and archive.task_spec(second) is None
    archive.set_status(first, "interrupted")
    assert archive.campaign(first).status == "interrupted"
    assert archive.campaign(first).updated_at >= record.updated_at
    assert archive.latest_campaign().id == second
    assert archive.latest_campaign("synthetic").id == first
    assert archive.latest_campaign("missing") is None
    assert [c.id for c in archive.campaigns()] == [first, second]
    with pytest.raises(ValueError):
        archive.set_status(first, "paused")
    with pytest.raises(ArchiveError, match="no campaign 99"):
        archive.campaign(99)
    with pytest.raises(ArchiveError, match="no campaign 99"):
        archive.set_status(99, "finished")


def test_entries_round_trip_with_lineage_and_llm_link(archive):
    campaign = archive.create_campaign("t", {}, 0)
    call = archive.record_llm_call(campaign, LLMCall("model-x", 120, 30, 1.5, 0.002, True, "", "json_schema"))
    parent = new_entry(key="p")
    child = new_entry(
        key="c", formula="A*N**b + E", proposer="llm", operator="llm", generation=2, island=1,
        rationale="adds an offset", llm_call_id=call, score=0.01,
        params={"g1": {"A": 1.0, "b": -0.5, "E": 2.0}, "g2": {"A": 3.0, "b": -0.4, "E": 1.0}},
        diagnostics={"per_group": {"g1": {"cost": 0.1}}, "note": "x"},
    )
    rejected = new_entry(key=None, srepr=None, complexity=None, n_params=None, status="rejected",
                         reason="formula does not parse", params={}, train={}, validation={}, score=None)
    parent_id = archive.record(campaign, parent)
    child_id = archive.record(campaign, dataclasses.replace(child, parent_ids=(parent_id, parent_id)))
    rejected_id = archive.record(campaign, rejected)

    entries = archive.entries(campaign)
    assert [e.id for e in entries] == [parent_id, child_id, rejected_id]
    assert new_fields(entries[0]) == new_fields(parent)
    assert new_fields(entries[1]) == new_fields(dataclasses.replace(child, parent_ids=(parent_id, parent_id)))
    assert new_fields(entries[2]) == new_fields(rejected)
    assert entries[1].campaign_id == campaign
    assert (entries[1].prompt_tokens, entries[1].completion_tokens) == (120, 30)
    assert entries[0].prompt_tokens is None
    assert archive.entry(child_id) == entries[1]
    with pytest.raises(ArchiveError, match="no law 999"):
        archive.entry(999)


def test_non_finite_numbers_round_trip(archive):
    campaign = archive.create_campaign("t", {"budget": math.inf}, 0)
    entry = new_entry(
        params={"g": {"A": math.nan, "B": math.inf, "C": -math.inf, "D": np.float64(2.5)}},
        train={"nmse": math.inf}, validation={"nmse": math.nan}, score=math.inf,
        diagnostics={"array": np.array([1.0, np.nan]), "count": np.int64(3), "flag": np.bool_(True),
                     "odd": Path("some/path")},
        seconds=math.nan, status="failed", reason="overflow",
    )
    stored = archive.entry(archive.record(campaign, entry))
    assert math.isnan(stored.params["g"]["A"])
    assert stored.params["g"]["B"] == math.inf and stored.params["g"]["C"] == -math.inf
    assert stored.params["g"]["D"] == 2.5
    assert stored.train == {"nmse": math.inf} and math.isnan(stored.validation["nmse"])
    assert stored.score == math.inf
    assert stored.seconds is None  # SQLite stores NaN in a REAL column as NULL
    assert stored.diagnostics["array"][0] == 1.0 and math.isnan(stored.diagnostics["array"][1])
    assert stored.diagnostics["count"] == 3 and stored.diagnostics["flag"] is True
    assert stored.diagnostics["odd"] == str(Path("some/path"))  # unknown objects are stored as text
    assert archive.campaign(campaign).settings == {"budget": math.inf}
    # The JSON written is strict: SQLite's own JSON functions read it.
    raw = sqlite3.connect(archive.path).execute(
        "SELECT json_extract(params, '$.g.A') FROM evaluations").fetchone()[0]
    assert raw == "NaN"
    json.dumps(record_to_dict(stored), allow_nan=False)


def test_json_codec_keeps_ordinary_strings():
    value = {"a": [1, "text", None, {"b": -math.inf}], "c": "Infinity-ish"}
    assert from_json(to_json(value)) == {"a": [1, "text", None, {"b": -math.inf}], "c": "Infinity-ish"}


def test_new_entry_validates_status_and_key():
    with pytest.raises(ValueError, match="status"):
        new_entry(status="great")
    with pytest.raises(ValueError, match="key"):
        new_entry(key=None)
    assert new_entry(parent_ids=[3, 4]).parent_ids == (3, 4)


# -- dedup ---------------------------------------------------------------------------------
def test_duplicate_key_is_stored_once_per_campaign(archive):
    first = archive.create_campaign("t", {}, 0)
    second = archive.create_campaign("t", {}, 1)
    law_id = archive.record(first, new_entry(key="same", score=0.5))
    assert archive.record(first, new_entry(key="same", score=0.1, formula="renamed")) == law_id
    assert archive.entry(law_id).score == 0.5  # the existing law is not overwritten
    assert archive.lookup_key(first, "same") == law_id
    assert archive.lookup_key(first, "other") is None
    assert archive.count(first) == 1
    other_id = archive.record(second, new_entry(key="same"))
    assert other_id != law_id and archive.lookup_key(second, "same") == other_id
    rejected = new_entry(key=None, status="rejected", score=None)
    assert archive.record(first, rejected) != archive.record(first, rejected)
    assert archive.count(first) == 3


def test_reserved_laws_take_their_ids_in_batch_order_and_stay_hidden_until_evaluated(archive):
    campaign = archive.create_campaign("t", {}, 0)
    parent = archive.record(campaign, new_entry(key="parent", score=0.3))
    first, second = archive.reserve(campaign, [new_entry(key="a", parent_ids=(parent,)), new_entry(key="b")])
    assert parent < first < second
    assert archive.count(campaign) == 1 and [e.id for e in archive.entries(campaign)] == [parent]
    assert archive.lookup_key(campaign, "a") is None and [e.id for e in archive.top("t")] == [parent]
    # the second finishes first: it keeps its reserved id
    assert archive.record(campaign, new_entry(key="b", score=0.1)) == second
    assert archive.record(campaign, new_entry(key="a", score=0.2, parent_ids=(parent,))) == first
    assert [e.id for e in archive.entries(campaign)] == [parent, first, second]
    assert archive.entry(first).parent_ids == (parent,) and archive.count(campaign) == 3
    # killed before evaluating: a later proposal of the same law takes the reserved id and its own origin
    [pending] = archive.reserve(campaign, [new_entry(key="c", generation=1, parent_ids=(first,))])
    assert archive.reserve(campaign, [new_entry(key="c", generation=4, parent_ids=(second,))]) == [pending]
    assert archive.record(campaign, new_entry(key="c", generation=4, parent_ids=(second,))) == pending
    assert (archive.entry(pending).generation, archive.entry(pending).parent_ids) == (4, (second,))
    # an evaluated law is not reserved again, nor changed
    assert archive.reserve(campaign, [new_entry(key="a", generation=9)]) == [first]
    assert archive.entry(first).generation == 0


def test_failed_write_leaves_nothing_behind(archive):
    campaign = archive.create_campaign("t", {}, 0)
    with pytest.raises(ArchiveError, match="does not exist"):
        archive.record(campaign, new_entry(key="orphan", parent_ids=(12345,)))
    with pytest.raises(ArchiveError):
        archive.record(999, new_entry(key="nowhere"))
    assert archive.count(campaign) == 0
    assert archive.lookup_key(campaign, "orphan") is None
    assert archive.record(campaign, new_entry(key="orphan")) > 0  # the key is still free


# -- queries -------------------------------------------------------------------------------
def test_top_is_best_first_one_per_key_ok_and_finite_only(archive):
    one = archive.create_campaign("t", {}, 0)
    two = archive.create_campaign("t", {}, 1)
    elsewhere = archive.create_campaign("u", {}, 0)
    ids = {
        "a1": archive.record(one, new_entry(key="a", score=0.30)),
        "b1": archive.record(one, new_entry(key="b", score=0.10)),
        "c1": archive.record(one, new_entry(key="c", score=0.20)),
        "a2": archive.record(two, new_entry(key="a", score=0.05)),
        "d2": archive.record(two, new_entry(key="d", score=0.01, status="failed")),
        "e2": archive.record(two, new_entry(key="e", score=math.inf)),
        "f2": archive.record(two, new_entry(key="f", score=math.nan)),
        "u": archive.record(elsewhere, new_entry(key="g", score=0.0)),
    }
    archive.record(two, new_entry(key=None, status="rejected", score=None))
    assert [e.id for e in archive.top("t")] == [ids["a2"], ids["b1"], ids["c1"]]
    assert [e.id for e in archive.top("t", n=2)] == [ids["a2"], ids["b1"]]
    assert [e.id for e in archive.top("t", campaign_id=one)] == [ids["b1"], ids["c1"], ids["a1"]]
    assert [e.id for e in archive.top("u")] == [ids["u"]]
    assert archive.top("nothing") == [] and archive.top("t", n=0) == []


def test_front_on_a_hand_made_set(archive):
    campaign = archive.create_campaign("t", {}, 0)
    points = {  # name: (complexity, score, status)
        "simple": (3, 5.0, "ok"),
        "dominated_4": (4, 6.0, "ok"),
        "mid_worse": (5, 2.0, "ok"),
        "mid": (5, 1.5, "ok"),
        "no_gain": (7, 1.5, "ok"),
        "complex": (9, 1.0, "ok"),
        "failed_best": (2, 0.1, "failed"),
        "infinite": (1, math.inf, "ok"),
        "tie_later": (9, 1.0, "ok"),
    }
    ids = {name: archive.record(campaign, new_entry(key=name, complexity=c, score=s, status=status))
           for name, (c, s, status) in points.items()}
    front = archive.front("t")
    assert [e.id for e in front] == [ids["simple"], ids["mid"], ids["complex"]]
    assert [e.complexity for e in front] == [3, 5, 9]
    assert archive.front("t", campaign_id=campaign) == front
    assert archive.front("other") == []


@given(st.lists(st.tuples(st.integers(1, 12), st.floats(0, 10, allow_nan=False)), max_size=30))
def test_pareto_front_matches_the_definition(raw_points):
    class Point:
        def __init__(self, i, c, s):
            self.id, self.complexity, self.score = i, c, s

    items = [Point(i, c, s) for i, (c, s) in enumerate(raw_points)]
    front = pareto_front(items)

    def dominated(p):
        return any(q.complexity <= p.complexity and q.score <= p.score
                   and (q.complexity < p.complexity or q.score < p.score) for q in items)

    undominated_points = {(p.complexity, p.score) for p in items if not dominated(p)}
    assert {(p.complexity, p.score) for p in front} == undominated_points
    assert len(front) == len(undominated_points)  # one law per point
    assert [p.complexity for p in front] == sorted(p.complexity for p in front)


def test_llm_usage_totals(archive):
    campaign = archive.create_campaign("t", {}, 0)
    assert archive.llm_usage(campaign).calls == 0
    archive.record_llm_call(campaign, LLMCall("m", 100, 20, 1.0, 0.01, True, "", "json_schema"))
    archive.record_llm_call(campaign, LLMCall("m", 50, 0, 30.0, 0.0, False, "timeout", "json_object"))
    usage = archive.llm_usage(campaign)
    assert (usage.calls, usage.failed_calls, usage.prompt_tokens, usage.completion_tokens) == (2, 1, 150, 20)
    assert usage.cost_usd == pytest.approx(0.01) and usage.latency_s == pytest.approx(31.0)


# -- the file ------------------------------------------------------------------------------
def test_wal_mode_and_schema_version(archive, path):
    archive.create_campaign("t", {}, 0)
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert archive._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert archive._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopening_keeps_everything(path):
    with Archive(path) as first:
        campaign = first.create_campaign("t", {}, 0)
        first.record(campaign, new_entry(key="x"))
    with Archive(path, create=False) as again:
        assert again.count(campaign) == 1


def test_reading_a_missing_archive_does_not_create_it(tmp_path):
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(ArchiveError, match=r"no archive at .*nope.sqlite; run `sld discover` first"):
        Archive(missing, create=False)
    assert not missing.exists()


@pytest.mark.parametrize("content", [b"not a database at all" * 10, b""])
def test_a_file_that_is_not_an_archive_is_refused(tmp_path, content):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(content)
    with pytest.raises(ArchiveError, match="not"):
        Archive(bad, create=False)
    assert bad.read_bytes() == content


def test_foreign_database_and_newer_schema_are_refused(tmp_path):
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)")
    with pytest.raises(ArchiveError, match="something else"):
        Archive(foreign)
    newer = tmp_path / "newer.sqlite"
    Archive(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(ArchiveError, match="schema version"):
        Archive(newer)


def test_closed_archive_says_so(path):
    archive = Archive(path)
    archive.close()
    archive.close()
    with pytest.raises(ArchiveError, match="closed"):
        archive.count(1)


# -- concurrency and crashes ---------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys
    from sld.archive import Archive, NewEntry
    path, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    archive = Archive(path)
    latest = archive.latest_campaign("crash")
    campaign = latest.id if latest else archive.create_campaign("crash", {}, 0)
    for i in range(start, stop):
        entry = NewEntry(
            formula=f"A*N**{i}", key=f"k{i}", srepr=None, complexity=3 + i % 7, n_params=1,
            proposer="offline", operator="mutate", generation=i // 10, island=0,
            parent_ids=(), rationale="synthetic", status="ok", reason="",
            params={"g": {"A": float(i)}}, train={"nmse": 1.0}, validation={"nmse": 1.0 / (i + 1)},
            score=1.0 / (i + 1), diagnostics={"i": i}, seconds=0.0)
        law_id = archive.record(campaign, entry)
        print(i, law_id, flush=True)
""")


def _start_writer(path: Path, start: int, stop: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(start), str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _next_report(writer: subprocess.Popen) -> tuple[int, int]:
    """The writer's next ``i law_id`` line; if it stopped instead, fail with what it said."""
    line = writer.stdout.readline()
    if not line.strip():
        writer.kill()
        _, err = writer.communicate()
        pytest.fail(f"the writer stopped before reporting (exit {writer.returncode}): {err[-2000:]}")
    i, law_id = map(int, line.split())
    return i, law_id


def test_sigkill_mid_campaign_loses_no_finished_entry_and_duplicates_none(path):
    """Kill a writer (at an arbitrary moment) twice, resume from scratch each time, then finish."""
    printed: dict[int, int] = {}  # i -> law id the writer reported after its commit
    committed = 0
    rng = np.random.default_rng(0)
    for round_ in range(2):
        writer = _start_writer(path, 0, 100_000)
        for _ in range(40 * (round_ + 1)):
            i, law_id = _next_report(writer)
            assert printed.setdefault(i, law_id) == law_id  # a resumed key keeps its id
        time.sleep(float(rng.uniform(0, 0.02)))
        writer.send_signal(signal.SIGKILL)
        # Read on through the same file object: communicate() reads the raw pipe and would
        # skip what readline() already buffered, so `rest` could start mid-line.
        rest = writer.stdout.read()
        writer.stdout.close()
        writer.stderr.close()
        writer.wait()
        # SIGKILL can land mid-print: only complete lines are reports (the commit came first)
        for line in rest[: rest.rfind("\n") + 1].splitlines():
            i, law_id = map(int, line.split())
            assert printed.setdefault(i, law_id) == law_id
        assert writer.returncode == -signal.SIGKILL

        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [k for (k,) in db.execute("SELECT key FROM laws ORDER BY id")]
        assert len(keys) == len(set(keys))
        # The writer is sequential, so what committed is exactly k0..k{m}, each with its evaluation.
        assert sorted(int(k[1:]) for k in keys) == list(range(len(keys)))
        assert len(keys) >= len(printed) and len(keys) >= committed
        committed = len(keys)
        assert db.execute("SELECT count(*) FROM laws JOIN evaluations ON law_id = id").fetchone()[0] == len(keys)
        db.close()

    finisher = _start_writer(path, 0, 200)
    out, err = finisher.communicate(timeout=60)
    assert finisher.returncode == 0, err
    for line in out.splitlines():
        i, law_id = map(int, line.split())
        assert printed.setdefault(i, law_id) == law_id
    with Archive(path, create=False) as archive:
        campaign = archive.latest_campaign("crash").id
        entries = archive.entries(campaign)
        assert len(entries) == max(200, committed)
        assert [e.key for e in entries] == [f"k{i}" for i in range(len(entries))]
        assert {i: archive.lookup_key(campaign, f"k{i}") for i in printed} == printed


def test_reader_works_while_another_process_writes(path):
    Archive(path).close()
    writer = _start_writer(path, 0, 300)
    seen: list[int] = []
    errors: list[BaseException] = []
    while writer.poll() is None or not seen:
        try:
            with Archive(path, create=False) as reader:
                campaign = reader.latest_campaign("crash")
                if campaign:
                    seen.append(reader.count(campaign.id))
                    reader.top("crash", n=3)
                    reader.front("crash")
        except ArchiveError as err:  # pragma: no cover - the failure this test guards against
            errors.append(err)
    assert writer.wait() == 0, writer.stderr.read()
    assert not errors
    assert seen == sorted(seen)  # a reader never sees a commit disappear
    with Archive(path, create=False) as reader:
        assert reader.count(reader.latest_campaign("crash").id) == 300


def test_one_archive_shared_by_threads(path):
    with Archive(path) as archive:
        campaign = archive.create_campaign("t", {}, 0)

        def write(offset: int) -> None:
            for i in range(25):
                archive.record(campaign, new_entry(key=f"{offset}-{i}"))
                archive.record(campaign, new_entry(key="shared"))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert archive.count(campaign) == 4 * 25 + 1


# -- the command line ----------------------------------------------------------------------
@pytest.fixture
def filled(path):
    with Archive(path) as archive:
        campaign = archive.create_campaign("synthetic", {}, 0)
        for name, complexity, score in [("a", 3, 5.0), ("b", 5, 1.5), ("c", 9, 1.0), ("d", 11, 2.0)]:
            archive.record(campaign, new_entry(key=name, formula=f"A*N**{name}", complexity=complexity,
                                               score=score, n_params=2))
    return path


def test_cli_top_table_and_json(filled, capsys):
    assert sld(["archive", "top", "synthetic", "-n", "2", "--archive", str(filled)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["rank", "law", "id"]
    assert lines[1].split()[:3] == ["1", "3", "1"] and lines[1].endswith("A*N**c")
    assert lines[2].split()[:3] == ["2", "2", "1.5"] and len(lines) == 3
    assert sld(["archive", "top", "synthetic", "--json", "--archive", str(filled), "--campaign", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [(d["rank"], d["id"]) for d in document] == [(1, 3), (2, 2), (3, 4), (4, 1)]


def test_cli_front(filled, capsys):
    assert sld(["archive", "front", "synthetic", "--archive", str(filled), "--json"]) == 0
    assert [d["key"] for d in json.loads(capsys.readouterr().out)] == ["a", "b", "c"]


def test_cli_campaigns(filled, capsys):
    assert sld(["archive", "campaigns", "--archive", str(filled)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:5] == ["1", "synthetic", "running", "0", "4"]


def test_cli_errors_are_one_line(filled, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sld(["archive", "top", "synthetic"]) == 2
    err = capsys.readouterr().err
    assert err == f"sld: error: no archive at {DEFAULT_ARCHIVE}; run `sld discover` first or pass --archive\n"
    assert not (tmp_path / DEFAULT_ARCHIVE).exists()
    assert sld(["archive", "top", "typo", "--archive", str(filled)]) == 2
    assert "tasks in it: synthetic" in capsys.readouterr().err
    assert sld(["archive", "top", "synthetic", "--campaign", "5", "--archive", str(filled)]) == 2
    assert "no campaign 5" in capsys.readouterr().err
