"""A whole recipe on a tiny random model: every step runs for real, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from heedful.errors import InvalidInput
from heedful.recipes import recipe_from_dict, run_recipe
from heedful.recipes.demo import json_figures
from heedful.store import Store

CONSTRAINTS = [
    ("Say something short. Answer in at most 4 words.", {"name": "word_count", "max_words": 4}),
    ("Say a few words. Do not use any commas.", {"name": "no_commas"}),
    ("Reply briefly. Answer in fewer than 6 words.", {"name": "word_count", "num_words": 6, "relation": "less than"}),
]


def write_prompts(path, n_topics: int = 6):
    with open(path, "w") as f:
        for t in range(n_topics):
            for k, (text, spec) in enumerate(CONSTRAINTS):
                f.write(json.dumps({"id": f"t{t}-{k}", "topic": t, "prompt": f"Topic {t}. {text}",
                                    "checks": [{"name": "instructions", "instructions": [spec]}]}) + "\n")


def tiny_recipe(model_dir, prompts_file) -> dict:
    pool = {"name": "raters", "members": [
        {"persona": "careful", "base": "verify:instructions", "flip_rate": 0.05},
        {"persona": "noisy", "base": "verify:instructions", "flip_rate": 0.3},
        {"persona": "strict", "base": "verify:instructions", "shift": -0.3}]}
    train_cfg = {"max_steps": 2, "per_device_train_batch_size": 2, "max_length": 64, "save_steps": 0}
    return {
        "name": "tiny", "model": str(model_dir), "seed": 0,
        "prompts": {"file": str(prompts_file), "group_by": "topic", "heldout": 0.34},
        "steps": [
            {"step": "generate", "n": 4, "max_new_tokens": 8},
            {"step": "annotate", "annotator": "verify:instructions"},
            {"step": "annotate", "pool": pool},
            {"step": "build", "name": "pairs", "rule": "outcome_pairs", "config": {"balance_length": False}},
            {"step": "build", "name": "accepted", "rule": "outcome_sft"},
            {"step": "train", "name": "dpo", "method": "dpo", "dataset": "pairs", "config": train_cfg},
            {"step": "train", "name": "sft", "method": "sft", "dataset": "accepted",
             "config": {**train_cfg, "max_steps": 1}},
            {"step": "eval", "models": ["base", "dpo", "sft"], "max_new_tokens": 8, "best_of_n": {"n": 2}},
            {"step": "report"},
        ],
    }


def test_tiny_recipe_runs_every_step(db_url, tiny_model_dir, own_cache, tmp_path):
    write_prompts(tmp_path / "p.jsonl")
    recipe, steps = recipe_from_dict(tiny_recipe(tiny_model_dir, tmp_path / "p.jsonl"))
    store = Store(db_url)
    said = []
    res = run_recipe(recipe, steps, store, tmp_path / "runs", say=said.append)

    prompts = {s: list(store.prompts(tag=f"{res.tag}:{s}")) for s in ("train", "heldout")}
    assert len(prompts["train"]) == 12 and len(prompts["heldout"]) == 6  # 4 + 2 topics of 3 prompts
    train_topics = {p.meta["topic"] for p in prompts["train"]}
    assert train_topics.isdisjoint({p.meta["topic"] for p in prompts["heldout"]})
    assert all(p.messages[0].role == "user" for p in prompts["train"])  # chats: TRL applies the template

    samples = [r for r in store.responses(tag=f"{res.tag}:train")]
    assert len(samples) == 48
    fb = list(store.feedback(kind="outcome", tag=f"{res.tag}:train"))
    assert {f.source.type for f in fb} == {"verifier", "simulated"}
    assert len(fb) == 48 * 4  # the verifier and three raters on every sample

    ds = res.figures["datasets"]
    assert ds["pairs"]["rows"]["train"] > 0 and ds["accepted"]["rows"]["train"] > 0
    behind = store.feedback_behind(ds["pairs"]["id"], "dataset")
    assert set(behind["feedback_ids"]) <= {f.id for f in fb} and behind["feedback_ids"]
    for name in ("dpo", "sft"):
        run = store.run(res.figures["training"][name]["run_id"])
        assert run.status == "succeeded" and run.metrics["global_step"] >= 1

    ev = res.figures["eval"]
    assert [m["name"] for m in ev["methods"]] == ["base", "dpo", "sft", "best_of_2"]
    for m in ev["methods"]:
        assert m["n"] == 6 and 0 <= m["low"] <= m["value"] <= m["high"] <= 100
    assert ev["before"]["name"] == "base" and ev["after"]["name"] == "dpo"
    assert ev["gain_points"] == pytest.approx(ev["after"]["value"] - ev["before"]["value"], abs=0.02)

    html = open(res.report, encoding="utf-8").read()
    assert "Held-out compliance by method" in html and "Annotators against the verifier" in html
    out = json_figures(res, quick=False)
    assert set(out["before"]) == {"label", "value", "low", "high", "n"} and len(out["methods"]) == 4
    assert json.loads((tmp_path / "runs" / res.tag / "figures.json").read_text())["eval"]["check"] == "instructions"
    assert any(line.startswith("eval: ") for line in said)


def test_bad_prompt_file_fails_before_writing(tmp_path, tiny_model_dir):
    (tmp_path / "p.jsonl").write_text('{"id": "x", "topic": 1}\n')
    recipe, steps = recipe_from_dict(tiny_recipe(tiny_model_dir, tmp_path / "p.jsonl"))
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(InvalidInput, match="line 1: a row needs 'prompt'"):
        run_recipe(recipe, steps, store, tmp_path / "runs")
    assert store.stats()["prompts"] == 0
