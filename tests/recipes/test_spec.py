"""Recipe validation: every mistake is found before any work, with a message that names it."""

from __future__ import annotations

import copy

import pytest
import yaml

from heedful.errors import InvalidInput, NotFound, UnknownName
from heedful.recipes import STEPS, load_recipe, recipe_from_dict
from heedful.recipes.demo import QUICK, apply_overrides, demo_path, load_demo

BASE = {
    "name": "t",
    "prompts": {"file": "p.jsonl"},
    "steps": [
        {"step": "generate", "n": 2},
        {"step": "annotate", "annotator": "verify:instructions"},
        {"step": "build", "name": "pairs", "rule": "outcome_pairs"},
        {"step": "train", "name": "dpo", "method": "dpo", "dataset": "pairs"},
        {"step": "eval", "models": ["base", "dpo"]},
        {"step": "report"},
    ],
}


def with_step(i: int, **changes) -> dict:
    data = copy.deepcopy(BASE)
    data["steps"][i] = {**data["steps"][i], **changes}
    return data


def test_valid_recipe_parses_into_typed_steps():
    recipe, steps = recipe_from_dict(BASE)
    assert [s.step for s in steps] == ["generate", "annotate", "build", "train", "eval", "report"]
    assert steps[0].n == 2 and steps[0].temperature == 1.0
    assert recipe.model == "smollm2"


def test_unknown_step_suggests_the_close_name():
    with pytest.raises(UnknownName, match=r"unknown step .*'genrate'.*Did you mean 'generate'"):
        recipe_from_dict(with_step(0, step="genrate"))


def test_unknown_field_suggests_the_close_name():
    with pytest.raises(UnknownName, match=r"field of step 'generate'.*'temprature'.*Did you mean 'temperature'"):
        recipe_from_dict(with_step(0, temprature=0.5))


def test_missing_field_is_named():
    data = copy.deepcopy(BASE)
    del data["steps"][2]["rule"]
    with pytest.raises(InvalidInput, match=r"steps\[2\] \(build\).*rule: Field required"):
        recipe_from_dict(data)


def test_missing_prompts_section_is_named():
    data = {k: v for k, v in BASE.items() if k != "prompts"}
    with pytest.raises(InvalidInput, match="prompts: Field required"):
        recipe_from_dict(data)


def test_step_without_step_key():
    data = copy.deepcopy(BASE)
    data["steps"][0] = {"n": 2}
    with pytest.raises(InvalidInput, match="'step' key"):
        recipe_from_dict(data)


def test_unknown_top_level_field():
    with pytest.raises(UnknownName, match="top-level field.*'step'.*Did you mean 'steps'"):
        recipe_from_dict({**BASE, "step": []})


def test_bad_values_inside_steps_are_found_early():
    with pytest.raises(UnknownName, match="build rule 'outcome_pair'.*Did you mean 'outcome_pairs'"):
        recipe_from_dict(with_step(2, rule="outcome_pair"))
    with pytest.raises(UnknownName, match="build option.*'agregate'.*Did you mean 'aggregate'"):
        recipe_from_dict(with_step(2, config={"agregate": "majority"}))
    with pytest.raises(UnknownName, match="training method 'dpoo'"):
        recipe_from_dict(with_step(3, method="dpoo"))
    with pytest.raises(UnknownName, match="dpo option 'betta'.*Did you mean 'beta'"):
        recipe_from_dict(with_step(3, config={"betta": 0.2}))
    with pytest.raises(UnknownName, match="verifier 'instruction'.*Did you mean 'instructions'"):
        recipe_from_dict(with_step(1, annotator="verify:instruction"))
    with pytest.raises(InvalidInput, match=r"n: Input should be greater than or equal to 1"):
        recipe_from_dict(with_step(0, n=0))


def test_references_must_be_made_by_an_earlier_step():
    with pytest.raises(UnknownName, match="dataset .*'pair'.*Did you mean 'pairs'"):
        recipe_from_dict(with_step(3, dataset="pair"))
    with pytest.raises(UnknownName, match="model .*'dp'"):
        recipe_from_dict(with_step(4, models=["base", "dp"]))
    data = copy.deepcopy(BASE)
    data["steps"] = [data["steps"][0], data["steps"][5]]
    with pytest.raises(InvalidInput, match="put a build step before it"):
        recipe_from_dict(data)
    data = copy.deepcopy(BASE)
    data["steps"].insert(3, {"step": "build", "name": "pairs", "rule": "outcome_kto"})
    with pytest.raises(InvalidInput, match="'pairs' is already used"):
        recipe_from_dict(data)


def test_annotate_needs_exactly_one_annotator():
    with pytest.raises(InvalidInput, match="exactly one of annotator or pool"):
        recipe_from_dict(with_step(1, pool={"name": "p", "members": []}))


def test_load_recipe_file_errors(tmp_path):
    with pytest.raises(NotFound):
        load_recipe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_recipe(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(BASE))
    recipe, _ = load_recipe(ok)
    assert recipe.path_of("p.jsonl") == tmp_path / "p.jsonl"


@pytest.mark.parametrize("quick", [False, True])
def test_bundled_demo_is_valid(quick):
    recipe, steps = load_demo(quick)
    assert {s.step for s in steps} <= set(STEPS)
    assert recipe.path_of(recipe.prompts.file).is_file()
    if quick:
        gen = next(s for s in steps if s.step == "generate")
        assert gen.n == QUICK["generate"]["n"]
        dpo = next(s for s in steps if s.step == "train" and s.name == "dpo")
        assert dpo.config["max_steps"] == QUICK["train:dpo"]["config"]["max_steps"]
        assert dpo.config["beta"] == 0.1  # merged, not replaced


def test_overrides_merge_deeply():
    data = yaml.safe_load(demo_path().read_text())
    out = apply_overrides(data, {"train:sft": {"config": {"max_steps": 1}}})
    sft = next(s for s in out["steps"] if s.get("name") == "sft")
    assert sft["config"]["max_steps"] == 1 and sft["config"]["max_length"] == 160
    assert data != out  # the input is not modified


def test_example_recipes_are_valid():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "examples" / "recipes"
    files = sorted(root.glob("*.yaml"))
    assert {f.name for f in files} >= {"rlaif_openai.yaml", "human_in_the_loop.yaml"}
    for f in files:
        load_recipe(f)
