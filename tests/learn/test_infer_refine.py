"""Critique → refine on scripted models: stopping rules, stored chain, lineage links."""

from __future__ import annotations

import pytest

from heedful.errors import InvalidInput
from heedful.learn.infer import refine, revision_prompt
from heedful.models import FakeModel
from tests.learn.infer_fakes import content, judge, judged_output, paris_rater


def reviser():
    """Answers London first; once it has seen feedback (a revision chat), Paris."""
    return FakeModel(lambda p, i: "Paris is the capital." if "feedback" in content(p) else "London.", name="policy")


def critic(satisfied="Looks good, no changes needed."):
    return judge("critique", lambda p: satisfied if "Paris" in judged_output(p)
                 else "Wrong: London is not the capital of France; name Paris.")


def test_refine_stops_when_the_critic_is_satisfied(store):
    p = store.get_prompt(store.add_prompt("What is the capital of France?"))
    [res] = refine(store, reviser(), [p], critic(), rounds=3)
    assert res.stopped == "satisfied"
    assert [s.text for s in res.steps] == ["London.", "Paris is the capital."]
    assert [s.satisfied for s in res.steps] == [False, True]
    draft, final = (store.get_response(s.response_id) for s in res.steps)
    assert final.parent_id == draft.id and final.meta["revises"] == draft.id
    assert final.meta["critique"] == res.steps[0].critique_id and final.meta["round"] == 1
    crits = {f.response_ids[0]: f for f in store.feedback(kind="critique")}
    assert set(crits) == {draft.id, final.id}
    assert "London is not" in crits[draft.id].value.text
    run = store.run(draft.meta["run"])
    assert run.metrics["stopped"] == {"satisfied": 1} and ("response", final.id) in run.outputs


def test_refine_revises_in_the_conversation_with_the_critique():
    from heedful.schema import Prompt
    chat = revision_prompt(Prompt(id="p", text="Q?"), "draft", "too short")
    assert [m["role"] for m in chat] == ["user", "assistant", "user"]
    assert chat[1]["content"] == "draft" and "too short" in chat[2]["content"]


def test_refine_runs_k_rounds_when_never_satisfied(store):
    p = store.get_prompt(store.add_prompt("What is the capital of France?"))
    never = judge("critique", lambda p: "Could be more detailed about the city.")
    model = FakeModel(lambda p, i: f"Answer after {content(p).count('feedback')} rounds of feedback.")
    [res] = refine(store, model, [p], never, rounds=2)
    assert res.stopped == "rounds" and [s.round for s in res.steps] == [0, 1, 2]
    assert all(s.critique_id for s in res.steps)  # the last draft is critiqued too
    chain = [store.get_response(s.response_id) for s in res.steps]
    assert [r.parent_id for r in chain] == [None, chain[0].id, chain[1].id]
    assert store.stats()["feedback"] == 3


def test_refine_stops_on_a_rating_and_on_a_missing_critique(store):
    a = store.get_prompt(store.add_prompt("What is the capital of France?"))
    b = store.get_prompt(store.add_prompt("Name a city."))
    res = refine(store, reviser(), [a], critic(satisfied="Still could say more about Paris."), rounds=3,
                 rater=paris_rater(), stop_score=8)
    assert res[0].stopped == "score" and res[0].final.score == 9 and len(res[0].steps) == 2
    mute = judge("critique", lambda p: "ok")  # shorter than the parser's minimum: no critique
    [res] = refine(store, reviser(), [b], mute, rounds=3)
    assert res.stopped == "no critique" and len(res.steps) == 1
    missing = [f for f in store.feedback(kind="critique", prompt_id=b.id)]
    assert missing[0].value is None and missing[0].provenance.missing_reason


def test_refine_refuses_bad_settings(store):
    p = store.get_prompt(store.add_prompt("Q?"))
    with pytest.raises(InvalidInput, match="rounds"):
        refine(store, reviser(), [p], critic(), rounds=0)
    with pytest.raises(InvalidInput, match="critique judge"):
        refine(store, reviser(), [p], paris_rater())
    with pytest.raises(InvalidInput, match="stop_score"):
        refine(store, reviser(), [p], critic(), rater=paris_rater())
    with pytest.raises(InvalidInput, match="drafts"):
        refine(store, reviser(), [p], critic(), drafts={"elsewhere": None})
    assert store.stats()["responses"] == 0


def test_refine_takes_given_drafts(store):
    p = store.get_prompt(store.add_prompt("What is the capital of France?"))
    draft = store.get_response(store.add_response(p.id, "London.", model="someone"))
    model = reviser()
    [res] = refine(store, model, [p], critic(), drafts={p.id: draft})
    assert res.steps[0].response_id == draft.id and res.stopped == "satisfied"
    assert len(model.calls) == 1  # only the revision was generated


def test_refine_chains_build_into_refinement_data(sqlite_store, tmp_path):
    from heedful.build import build
    store = sqlite_store
    p = store.get_prompt(store.add_prompt("What is the capital of France?"))
    [res] = refine(store, reviser(), [p], critic(), rounds=2)
    out = build(store, "refinement", tmp_path / "ilf")
    assert out.rows_out == {"train": 1}  # the satisfied last draft has no child: dropped as "no refinement"
    import datasets
    row = datasets.load_from_disk(str(tmp_path / "ilf"))["train"][0]
    assert row["completion"] == "Paris is the capital." and "London is not the capital" in row["prompt"]
