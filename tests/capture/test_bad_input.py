"""Bad input: a message naming the file, line and reason, a non-zero exit, and nothing written."""

from __future__ import annotations

import json

import pytest

from heedful.capture import import_file
from heedful.errors import InvalidInput
from heedful.store import Store

from .samples import DATA, as_file, read_back

GOOD = {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}


def _lines(path, *rows) -> str:
    path.write_bytes(b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows))
    return str(path)


@pytest.fixture
def db(db_url):
    """A store that already holds something, so "unchanged" means more than "empty"."""
    with Store(db_url) as s:
        import_file(s, DATA / "trl_unpaired.jsonl")
    return db_url


def _stats(db_url):
    with Store(db_url) as s:
        return s.stats()


@pytest.mark.parametrize("bad, reason", [
    (b'{"prompt": "x", "chosen": "a", ', "malformed JSON"),
    ({"prompt": "x", "chosen": 5, "rejected": "b"}, "column 'chosen' must be text or a non-empty list"),
    (b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}', "broken UTF-8"),
    ([1, 2], "expected an object"),
    ({"prompt": "x", "chosen": "same", "rejected": "same"}, "chosen and rejected are the same response"),
])
def test_bad_row_aborts_with_file_and_line(cli, db, tmp_path, bad, reason):
    before = _stats(db)
    path = _lines(tmp_path / "prefs.jsonl", GOOD, {**GOOD, "chosen": " azure."}, bad, GOOD)
    code, _, err = cli("import", path, "--format", "trl-preference", "--db", db)
    assert code == 2
    assert f"{path}:line 3" in err and reason in err
    assert _stats(db) == before


def test_span_outside_text_in_a_dump(cli, db, tmp_path):
    rows = [json.loads(x) for x in (DATA / "heedful_dump.jsonl").read_text().splitlines()]
    line = next(i for i, r in enumerate(rows, 1) if r.get("kind") == "span")
    rows[line - 1]["value"]["spans"][0]["end"] = 99
    path = _lines(tmp_path / "dump.jsonl", *rows)
    before = _stats(db)
    code, _, err = cli("import", path, "--db", db)
    assert code == 2 and f"{path}:line {line}" in err and "lies outside the response" in err
    assert _stats(db) == before


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_broken_utf8_in_other_file_types(sqlite_store, tmp_path, kind):
    path = as_file(tmp_path, "trl_preference.jsonl", kind, "trl-preference")
    path.write_bytes(path.read_bytes().replace("blue".encode(), b"bl\xffe", 1))
    with pytest.raises(InvalidInput, match=rf"{path}:line \d+: broken UTF-8"):
        import_file(sqlite_store, path)
    assert sqlite_store.stats()["prompts"] == 0


def test_missing_empty_and_unknown(cli, db, tmp_path):
    code, _, err = cli("import", tmp_path / "nope.jsonl", "--db", db)
    assert code == 3 and "nope.jsonl" in err
    (tmp_path / "empty.jsonl").write_text("")
    code, _, err = cli("import", tmp_path / "empty.jsonl", "--db", db)
    assert code == 2 and "empty.jsonl:line 1" in err and "empty" in err
    code, _, err = cli("import", DATA / "hh_rlhf.jsonl", "--format", "hh-rlfh", "--db", db)
    assert code == 3 and "unknown format 'hh-rlfh'" in err and "Did you mean 'hh-rlhf'" in err
    path = _lines(tmp_path / "odd.jsonl", {"question": "q", "answer": "a"})
    code, _, err = cli("import", path, "--db", db)
    assert code == 2 and "cannot tell the format" in err and "trl-preference" in err and "alpaca-eval" in err
    code, _, err = cli("import", DATA / "hh_rlhf.jsonl", "--source", "robot:x", "--db", db)
    assert code == 2 and "TYPE:NAME" in err


def test_skip_invalid_imports_the_rest_and_counts_reasons(cli, db, tmp_path):
    before = _stats(db)
    path = _lines(tmp_path / "prefs.jsonl", GOOD, b"{oops", {"prompt": "x", "chosen": 1, "rejected": "b"},
                  {"prompt": "y", "chosen": 2, "rejected": "c"}, {**GOOD, "chosen": " azure."})
    code, out, _ = cli("import", path, "--skip-invalid", "--db", db)
    assert code == 0
    assert "skipped rows" in out and "malformed JSON" in out
    with Store(db) as s:
        report = import_file(s, path, skip_invalid=True)
    assert (report.rows, report.imported, report.skipped) == (5, 2, 3)
    assert sorted(n for n, _ in report.reasons.values()) == [1, 2]  # two wrong types, one malformed line
    assert _stats(db)["feedback"] == before["feedback"] + 2


def test_skip_invalid_finds_a_bad_row_the_database_refuses(sqlite_store, tmp_path):
    rows = [json.loads(x) for x in (DATA / "heedful_dump.jsonl").read_text().splitlines()]
    span = next(r for r in rows if r.get("kind") == "span")
    span["value"]["spans"][0]["end"] = 99
    report = import_file(sqlite_store, _lines(tmp_path / "d.jsonl", *rows), skip_invalid=True)
    assert report.skipped == 1 and report.imported == len(rows) - 1
    assert sqlite_store.stats()["feedback_by_kind"].get("span") is None


def test_cli_export_with_filters_and_left_out_rows(cli, tmp_path):
    db = str(tmp_path / "h.db")
    assert cli("import", DATA / "alpaca_eval.jsonl", "--db", db)[0] == 0
    assert cli("import", DATA / "trl_preference.jsonl", "--tag", "mine", "--db", db)[0] == 0
    code, out, _ = cli("export", tmp_path / "p.parquet", "--format", "trl-preference", "--db", db)
    assert code == 0 and "wrote 5 rows" in out and "left out 2" in out  # a tie and a missing preference
    code, out, _ = cli("export", tmp_path / "mine", "--format", "trl-preference", "--tag", "mine", "--db", db)
    assert code == 0 and len(read_back(tmp_path / "mine")) == 3
    code, _, _ = cli("export", tmp_path / "ai.jsonl", "--format", "alpaca-eval", "--source", "ai", "--db", db)
    assert code == 0 and len(read_back(tmp_path / "ai.jsonl")) == 4
    code, _, err = cli("export", tmp_path / "x.jsonl", "--format", "heedful", "--kind", "rating", "--db", db)
    assert code == 2 and "cannot filter by kind" in err
    code, _, err = cli("export", tmp_path / "x.txt", "--format", "heedful", "--db", db)
    assert code == 2 and "extension" in err


def test_a_lone_surrogate_names_the_line_and_field(sqlite_store, tmp_path):
    bad = b'{"prompt": "q", "chosen": "half \\ud800 pair", "rejected": "b"}'
    path = _lines(tmp_path / "s.jsonl", GOOD, bad)
    with pytest.raises(InvalidInput, match=r"s\.jsonl:line 2: .*text contains a lone surrogate"):
        import_file(sqlite_store, path)
    assert sqlite_store.stats()["feedback"] == 0
    report = import_file(sqlite_store, path, skip_invalid=True)
    assert (report.imported, report.skipped) == (1, 1)
