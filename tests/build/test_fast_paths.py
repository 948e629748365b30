"""The build's fast paths give what the slow, general doors give.

- `output.save` writes the `save_to_disk` layout with pyarrow; here the same
  columns go through `datasets.DatasetDict.save_to_disk` and both folders must
  hold the same files, schema (with its `huggingface` metadata), features and rows.
- `load.feedback_rows` / `responses` / `prompts` read without SQLAlchemy's
  result processors; here they must equal what the SDK's validated stream and
  getters return, on SQLite and PostgreSQL, with NUL and escape characters.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pytest
import sqlalchemy as sa

from heedful.build import load, output
from heedful.build.core import Example
from heedful.store import tables as t
from heedful.store.reads import Filter

PROMPTS = {"p1": "Say hi.", "p2": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}]}


def examples(n: int, pid: str = "p1") -> list[Example]:
    return [Example(pid, (f"f{i}", f"g{i}"), chosen=f"yes {i} \u00e9\x00", rejected=f"no {i}", completion=f"c{i}",
                    label=i % 2 == 0, score=i / 3) for i in range(n)]


def reference(splits, fmt, prompts, path: Path) -> None:
    """The writer before the fast path: `Dataset.from_dict` + `save_to_disk`."""
    conv = output.is_conversational([e for x in splits.values() for e in x], prompts)
    feats = output.features(fmt, conv)
    dd = datasets.DatasetDict({k: datasets.Dataset.from_dict(output.columns(v, fmt, prompts, conv), features=feats)
                               for k, v in splits.items()})
    dd.save_to_disk(str(path))


def arrow(path: Path) -> pa.Table:
    with pa.OSFile(str(path)) as f:
        return pa.ipc.open_stream(f).read_all()


@pytest.mark.parametrize("fmt", sorted(output.COLUMNS))
@pytest.mark.parametrize("pid", ["p1", "p2"])
def test_save_matches_datasets_save_to_disk(tmp_path, fmt, pid):
    splits = {"train": examples(2500, pid), "test": examples(3, pid)}
    output.save(splits, fmt, PROMPTS, tmp_path / "fast")
    reference(splits, fmt, PROMPTS, tmp_path / "ref")
    fast, ref = tmp_path / "fast", tmp_path / "ref"
    names = sorted(str(p.relative_to(ref)) for p in ref.rglob("*") if p.is_file())
    assert sorted(str(p.relative_to(fast)) for p in fast.rglob("*") if p.is_file()) == sorted(names + ["lineage.jsonl"])
    for name in names:
        if name.endswith(".arrow"):
            a, b = arrow(fast / name), arrow(ref / name)
            assert a.schema.equals(b.schema, check_metadata=True) and a.equals(b)
        elif name.endswith("state.json"):
            a, b = (json.loads((d / name).read_text()) for d in (fast, ref))
            assert {**a, "_fingerprint": None} == {**b, "_fingerprint": None}
        else:
            assert (fast / name).read_text() == (ref / name).read_text(), name
    a, b = datasets.load_from_disk(str(fast)), datasets.load_from_disk(str(ref))
    for split in splits:
        assert a[split].features == b[split].features
        assert a[split].to_list() == b[split].to_list()
    lines = (fast / "lineage.jsonl").read_text().splitlines()
    assert lines[1] == json.dumps({"split": "train", "row": 1, "feedback_ids": ["f1", "g1"]})
    assert lines[-1] == json.dumps({"split": "test", "row": 2, "feedback_ids": ["f2", "g2"]})


def test_empty_split_loads(tmp_path):
    """`save_to_disk` writes no shard for an empty split and `load_from_disk` then fails; ours loads."""
    splits = {"train": examples(2), "test": []}
    output.save(splits, "preference", PROMPTS, tmp_path / "fast")
    a = datasets.load_from_disk(str(tmp_path / "fast"))
    assert a["test"].num_rows == 0 and a["test"].features == a["train"].features
    assert len(a["train"]) == 2


def test_shards_split_like_save_to_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(output, "MAX_SHARD_BYTES", 10_000)
    monkeypatch.setattr(output, "STRING_CHUNK", 100)  # several builder chunks, across shard boundaries
    splits = {"train": examples(1003)}
    output.save(splits, "preference", PROMPTS, tmp_path / "fast")
    table = pa.Table.from_pydict(output.columns(splits["train"], "preference", PROMPTS, False),
                                 schema=output.arrow_schema("preference", False))
    ds = datasets.Dataset(table)
    ds.save_to_disk(str(tmp_path / "ref"), max_shard_size=10_000)
    fast = sorted(p.name for p in (tmp_path / "fast" / "train").glob("*.arrow"))
    assert fast == sorted(p.name for p in (tmp_path / "ref").glob("*.arrow")) and len(fast) > 1
    for name in fast:
        assert arrow(tmp_path / "fast" / "train" / name).equals(arrow(tmp_path / "ref" / name))


WEIRD = "nul\x00 esc\ue000 rtl \u202e <b>'; DROP TABLE x;--"


def test_fast_reads_equal_the_sdk(db_url):
    from heedful.store import Store

    with Store(db_url) as store:
        store.write(
            prompts=[{"id": "p1", "text": "hi " + WEIRD}, {"id": "p2", "messages": [{"role": "user", "content": WEIRD}]}],
            responses=[{"id": f"r{i}", "prompt_id": "p1" if i < 3 else "p2", "text": f"{i} {WEIRD}",
                        **({"parent_id": "r0"} if i == 2 else {})} for i in range(5)],
            feedback=[{"id": f"f{i}", "kind": "preference", "response_ids": ["r0", "r1"] if i % 2 else ["r4", "r3"],
                       "value": {"choice": "ab"[i % 2], "strength": i / 7},
                       "source": {"type": "human", "name": f"h{i % 2}"}} for i in range(9)]
            + [{"id": f"c{i}", "kind": "correction", "response_ids": [f"r{i}"], "value": {"text": WEIRD * i},
                "source": {"type": "ai", "name": "j"}} for i in range(1, 4)])
        rows = list(load.feedback_rows(store, ["preference", "correction"], Filter(), page=4))
        sdk = list(store.feedback())
        assert [(r.id, r.kind, r.source, r.targets) for r in rows] == [
            (f.id, f.kind, f"{f.source.type}:{f.source.name}", tuple(f.response_ids)) for f in sdk]
        f = t.feedback  # the store's own column types, with their result processing
        with store.engine.connect() as conn:
            ref = conn.execute(sa.select(f.c.prompt_id, f.c.value).order_by(f.c.seq)).all()
        assert [(r.prompt_id, r.value) for r in rows] == [tuple(x) for x in ref]
        assert ref[-1][1]["text"] == WEIRD * 3
        resp = load.responses(store, [f"r{i}" for i in range(5)])
        assert {k: v.text for k, v in resp.items()} == {f"r{i}": store.get_response(f"r{i}").text for i in range(5)}
        assert [c.id for c in load.children(store, ["r0"])["r0"]] == ["r2"]
        got = load.prompts(store, ["p1", "p2"])
        assert got == {"p1": store.get_prompt("p1").text,
                       "p2": [{"role": m.role, "content": m.content} for m in store.get_prompt("p2").messages]}


def test_unweighted_majority_equals_weighted_with_unit_weights():
    """The unweighted fast path gives exactly what weights of 1 give (values, agreement, ties)."""
    import random

    from heedful.build.aggregate import Vote, aggregate

    rng = random.Random(3)
    votes = [Vote(rng.randrange(300), f"s{rng.randrange(4)}", rng.choice("ab") if i % 7 else "tie",
                  rng.choice([0.0, 1.0, 0.5, rng.random(), 1]), f"f{i}", rng.choice([None, 1, 2.5]))
             for i in range(1500)]
    for on_tie in ("drop", "random"):
        fast, slow, cf, cs = {}, {}, {}, {}
        fast = aggregate(votes, "majority", on_tie=on_tie, seed=1, counts=cf)
        slow = aggregate(votes, "majority", weights={"nobody": 1.0}, on_tie=on_tie, seed=1, counts=cs)
        assert cf == cs and list(fast) == list(slow)
        assert [(repr(d.label), repr(d.value), repr(d.agreement), d.fids, repr(d.margin)) for d in fast.values()] == \
            [(repr(d.label), repr(d.value), repr(d.agreement), d.fids, repr(d.margin)) for d in slow.values()]


def test_pair_pages_and_texts_equal_the_general_reads(db_url):
    from heedful.store import Store

    with Store(db_url) as store:
        store.write(prompts=[{"id": "p1", "text": "hi"}],
                    responses=[{"id": f"r{i}", "prompt_id": "p1", "text": f"{i} {WEIRD}"} for i in range(4)],
                    feedback=[{"id": f"f{i}", "kind": "preference",
                               "response_ids": [f"r{i % 4}", f"r{(i * 3 + 1) % 4}"],
                               "value": {"choice": "ab"[i % 2], **({"strength": i} if i % 3 else {})},
                               "source": {"type": "human", "name": "h"}} for i in range(11)]
                    + [{"id": "b1", "kind": "binary", "response_ids": ["r1"], "value": {"label": True},
                        "source": {"type": "human", "name": "h"}}])
        general = [(r.id, r.prompt_id, r.value, *r.targets)
                   for r in load.feedback_rows(store, ["preference"], Filter())]
        pages = list(load.pair_pages(store, ["preference"], Filter(), page=4))
        assert [len(p) for p in pages] == [4, 4, 3] and [r for p in pages for r in p] == general
        assert list(load.pair_pages(store, ["preference"], Filter(source_name="nobody"))) == []
        parsed = [r for p in load.pair_pages(store, ["preference"], Filter(), parse=lambda v: (v["choice"], v))
                  for r in p]
        assert parsed == [(i, p, (v["choice"], v), a, b) for i, p, v, a, b in general]
        ids = ["r3", "r0", "r3", "r2"]
        assert load.texts(store, ids) == {k: v.text for k, v in load.responses(store, ids).items()}


def test_flat_preference_majority_equals_the_general_aggregation(sqlite_store):
    """`preference_decisions`' unweighted-majority path (flat votes, `majority_flat`) decides every pair
    exactly as `aggregate` over `Vote`s does: flips, ties, draws, repeats, strengths, soft labels."""
    import random

    from heedful.build.core import BuildConfig, Context
    from heedful.build.rules.common import decide_pair, preference_decisions, preference_votes

    rng = random.Random(5)
    rids = [f"r{i}" for i in range(40)]
    sqlite_store.write(prompts=[{"id": "p1", "text": "q"}, {"id": "p2", "text": "q2"}],
                       responses=[{"id": r, "prompt_id": "p1" if i < 20 else "p2", "text": r}
                                  for i, r in enumerate(rids)])
    votes = []  # 1 to 4 votes on each of 150 pairs, shown in either order
    for j in range(150):
        group = rids[:20] if j % 2 else rids[20:]
        pair = rng.sample(group, 2)
        votes += [pair[::rng.choice([1, -1])] for _ in range(1 + j % 4)]
    rng.shuffle(votes)
    fb = []
    for i, (a, b) in enumerate(votes):
        value = {"choice": rng.choice(["a", "b", "b", "tie"])}
        if rng.random() < 0.4:
            value["strength"] = rng.choice([1, 2.5, 0.25])
        if rng.random() < 0.2:
            value["prob_b"] = rng.random()
        fb.append({"id": f"f{i}", "kind": "preference", "response_ids": [a, b], "value": value,
                   "source": {"type": "human", "name": f"h{i % 3}"}})
    sqlite_store.write(feedback=fb)
    for on_tie in ("drop", "random"):
        cfg = BuildConfig(on_tie=on_tie, seed=2)
        fast, slow = (Context(sqlite_store, Filter(), cfg, ["preference"]) for _ in range(2))
        got = preference_decisions(fast)
        want = slow.decide(preference_votes(slow), decide=decide_pair)
        assert list(got) == list(want) and fast.counts == slow.counts and fast.rows_in == slow.rows_in == len(fb)
        assert [repr((d.label, d.value, d.agreement, d.fids, d.margin)) for d in got.values()] == \
            [repr((d.label, d.value, d.agreement, d.fids, d.margin)) for d in want.values()]
        assert (slow.counts["conflict"] > 0) == (on_tie == "drop") and any(len(d.fids) > 2 for d in got.values())


def test_lineage_file_escapes_like_json_dumps(tmp_path):
    ex = [Example("p1", ("f\u00e9\x00\"\\", "g\u2028"), chosen="c", rejected="r"),
          Example("p1", (), chosen="c", rejected="r")]
    output.write_lineage(tmp_path / "l.jsonl", {"train": ex})
    assert (tmp_path / "l.jsonl").read_text(encoding="utf-8").splitlines() == [
        json.dumps({"split": "train", "row": i, "feedback_ids": list(e.fids)}) for i, e in enumerate(ex)]


@pytest.mark.parametrize("chat_at", [None, 0, 250])
def test_save_with_prompts_fetched_by_chunk(tmp_path, monkeypatch, chat_at):
    """Prompts fetched a chunk at a time give the same folder as a dict of them, also when a chat
    prompt turns up only in a later chunk (the split is then written again as conversational)."""
    monkeypatch.setattr(output, "STRING_CHUNK", 100)
    ex = examples(300)
    if chat_at is not None:
        ex[chat_at].prompt_id = "p2"
    asked = []

    def fetch(ids):
        asked.append(len(ids))
        return {i: PROMPTS[i] for i in ids}

    output.save({"train": ex, "test": examples(3)}, "preference", fetch, tmp_path / "lazy")
    output.save({"train": ex, "test": examples(3)}, "preference", PROMPTS, tmp_path / "dict")
    for name in ("train/data-00000-of-00001.arrow", "test/data-00000-of-00001.arrow"):
        lazy, ref = arrow(tmp_path / "lazy" / name), arrow(tmp_path / "dict" / name)
        assert lazy.schema.equals(ref.schema, check_metadata=True) and lazy.equals(ref)
    assert (tmp_path / "lazy" / "lineage.jsonl").read_text() == (tmp_path / "dict" / "lineage.jsonl").read_text()
    assert isinstance(lazy.column("prompt")[0].as_py(), list) == (chat_at is not None)
    assert max(asked) <= 2 and len(asked) == {None: 4, 0: 5, 250: 7}[chat_at]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_pair_query_reads_targets_from_the_covering_index(sqlite_store):
    """SQLite's planner would take the primary key and then read the table for each target;
    written as `pair_query` writes it, the lookups use migration 0003's covering index alone."""
    q = load.pair_query(["preference"], Filter(), 10).params(last=0)
    with sqlite_store.engine.connect() as conn:
        plan = " | ".join(r[-1] for r in conn.execute(sa.text("EXPLAIN QUERY PLAN " + str(
            q.compile(sqlite_store.engine, compile_kwargs={"literal_binds": True})))))
    assert plan.count("COVERING INDEX ix_feedback_targets_cover") == 2, plan


def test_importing_build_config_stays_light():
    """The CLI reads `BuildConfig`'s help on every start; that must not import the build's heavy
    dependencies, while `heedful.build`'s names still load on first use."""
    import subprocess
    import sys

    code = ("import sys, heedful.build, heedful.build.config; "
            "print(sorted(m for m in ('numpy', 'sqlalchemy', 'pyarrow') if m in sys.modules)); "
            "from heedful.build import BuildConfig, build, RULES, get_rule; import heedful.build.core as c; "
            "print(c.BuildConfig is BuildConfig, callable(build), RULES is c.RULES, get_rule is c.get_rule)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True True True True"]
