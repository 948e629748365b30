"""End to end on SQLite and PostgreSQL: the CLI, TRL's exact columns, lineage, bad input."""

from __future__ import annotations

import json

import datasets
import pytest
from trl.data_utils import is_conversational

from heedful.build import BuildConfig, build
from heedful.cli import main
from heedful.errors import InvalidInput, UnknownName

from .conftest import fb, populate

FEEDBACK = [
    fb("f1", "preference", {"choice": "a"}, ["r1", "r2"], "human:ann1"),
    fb("f2", "preference", {"choice": "a"}, ["r1", "r2"], "ai:judge"),
    fb("f3", "preference", {"choice": "b"}, ["r6", "r7"], "human:ann1"),
    fb("f4", "preference", {"choice": "a"}, ["r4", "r5"], "ai:judge"),
    fb("b1", "binary", {"label": True}, "r1", "user:u1"),
    fb("b2", "binary", {"label": False}, "r7", "user:u1"),
    fb("g1", "rating", {"score": 4, "scale": [1, 5]}, "r6", "human:ann1"),
    fb("c1", "correction", {"text": "2 is prime"}, "r2", "human:ann1"),
]


def cli(capsys, *argv):
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_end_to_end(store, tmp_path, capsys):
    populate(store, FEEDBACK)
    out_dir = tmp_path / "dpo"
    code, out, err = cli(capsys, "build", "preference_pairs", "-o", str(out_dir), "--from", "source=human",
                         "--split", "0.5", "--seed", "1", "--db", store.url)
    assert code == 0, err
    assert "feedback rows in" in out and "rows out: train" in out and "dataset d-" in out
    dd = datasets.load_from_disk(str(out_dir))
    assert set(dd) == {"train", "test"}
    rows = dd["train"].to_list() + dd["test"].to_list()
    assert dd["train"].column_names == ["prompt", "chosen", "rejected"]
    assert sorted((r["prompt"], r["chosen"], r["rejected"]) for r in rows) == [
        ("Add 2 and 2.", "5", "4"), ("Name a prime.", "7", "9 is prime")]
    assert not {r["prompt"] for r in dd["train"]} & {r["prompt"] for r in dd["test"]}
    ds_id = out.split("dataset ")[1].split()[0]
    ds = store.dataset(ds_id)
    assert ds.rule == "preference_pairs" and ds.n_rows == 2 and ds.path == str(out_dir.resolve())
    assert ds.config["filters"] == {"kind": ["preference"], "source_type": "human"}
    assert ds.config["build"]["split"] == 0.5 and ds.config["rows_in"] == 2
    assert store.dataset_feedback_ids(ds_id) == ["f1", "f3"]
    lineage = [json.loads(x) for x in (out_dir / "lineage.jsonl").read_text().splitlines()]
    assert sorted(f for x in lineage for f in x["feedback_ids"]) == ["f1", "f3"]


@pytest.mark.parametrize("rule,columns,conversational", [
    ("preference_pairs", ["prompt", "chosen", "rejected"], True),
    ("binary_kto", ["prompt", "completion", "label"], False),
    ("sft", ["prompt", "completion"], False),
    ("reward_regression", ["prompt", "completion", "score"], False),
])
def test_trl_columns(store, tmp_path, rule, columns, conversational):
    populate(store, FEEDBACK)
    res = build(store, rule, tmp_path / rule, config=BuildConfig(weighted=True))
    ds = datasets.load_from_disk(str(tmp_path / rule))["train"]
    assert ds.column_names == columns and ds.num_rows == res.rows_out["train"] > 0
    assert is_conversational(ds[0]) is conversational
    if conversational:
        assert ds.features["prompt"].feature["role"].dtype == "string"
    if rule == "binary_kto":
        assert ds.features["label"].dtype == "bool"


def test_bad_input_says_what_and_writes_nothing(store, tmp_path, capsys):
    populate(store, FEEDBACK)
    code, _, err = cli(capsys, "build", "preference_pairs", "-o", str(tmp_path / "x"), "--from", "sourc=ai",
                       "--db", store.url)
    assert code == UnknownName.exit_code and "filter key 'sourc'" in err and "Did you mean 'source'" in err
    code, _, err = cli(capsys, "build", "preferense_pairs", "-o", str(tmp_path / "x"), "--db", store.url)
    assert code == UnknownName.exit_code and "Did you mean 'preference_pairs'" in err
    code, _, err = cli(capsys, "build", "preference_pairs", "-o", str(tmp_path / "x"), "--from", "kind=binary",
                       "--db", store.url)
    assert code == InvalidInput.exit_code and "reads preference feedback" in err
    code, _, err = cli(capsys, "build", "preference_pairs", "-o", str(tmp_path / "x"), "--from", "model",
                       "--db", store.url)
    assert code == InvalidInput.exit_code and "KEY=VALUE" in err
    code, _, err = cli(capsys, "build", "preference_pairs", "-o", str(tmp_path / "x"), "--from", "tag=nope",
                       "--db", store.url)
    assert code == InvalidInput.exit_code and "made no rows" in err
    assert not (tmp_path / "x").exists() and store.stats()["datasets"] == 0
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = cli(capsys, "build", "sft", "-o", str(tmp_path / "full"), "--db", store.url)
    assert code == InvalidInput.exit_code and "not empty" in err
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"] and store.stats()["datasets"] == 0


def test_failed_registration_leaves_no_folder_and_no_dataset(store, tmp_path, monkeypatch):
    """The lineage is inserted while the folder is written; if it fails, both are undone."""
    from heedful.store import lineage

    populate(store, FEEDBACK)
    real = lineage.add_dataset

    def fails(*args, **kw):
        real(*args, **kw)  # inserted, then refused: the transaction must not commit
        raise RuntimeError("registration failed")

    monkeypatch.setattr(lineage, "add_dataset", fails)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="registration failed"):
        build(store, "preference_pairs", out / "ds")
    assert not list(out.iterdir()) and store.stats()["datasets"] == 0  # no folder, no temporary folder
    monkeypatch.setattr(lineage, "add_dataset", real)
    res = build(store, "preference_pairs", out / "ds")
    assert store.dataset_feedback_ids(res.dataset_id) == ["f1", "f2", "f3", "f4"]


def test_filters_by_model_and_tag(store, tmp_path):
    populate(store, FEEDBACK)
    res = build(store, "binary_kto", tmp_path / "m", filters={"model": "m2"})
    assert res.rows_out == {"train": 1} and store.dataset_feedback_ids(res.dataset_id) == ["b2"]
    res = build(store, "preference_pairs", tmp_path / "t", filters=["tag=train", "source=ai:judge"])
    assert store.dataset_feedback_ids(res.dataset_id) == ["f2"]


def test_build_rules_lists_every_rule(capsys):
    code, out, _ = cli(capsys, "build-rules")
    assert code == 0
    for name in ("preference_pairs", "ranking_pairs", "rating_pairs", "correction_pairs", "outcome_pairs",
                 "outcome_kto", "binary_kto", "hindsight", "refinement", "sft", "reward_regression"):
        assert name in out
