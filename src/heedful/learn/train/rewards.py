"""Reward functions for GRPO, by name: verifiers from the registry and trained reward models.

Each becomes a plain function in TRL's convention,
`fn(prompts, completions, **columns) -> list[float | None]`:

- `NAME` or `verifier:NAME` — a registered verifier `(prompt, response, **meta)`;
  the dataset's other columns (e.g. `expected`) are passed per row as `meta`.
  The reward is the outcome's score (or 1/0 from passed); a verifier that raises
  gives None, which TRL treats as "no reward from this function" for that row.
- `rm:PATH` or a model folder — a reward model trained with `heedful train reward`,
  scoring prompt + completion.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from heedful.errors import InvalidInput

RewardFn = Callable[..., list]
TRL_KWARGS = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}


def resolve(names: list[str]) -> list[RewardFn]:
    if not names:
        raise InvalidInput("GRPO needs at least one reward function: --reward-funcs VERIFIER or rm:PATH")
    return [reward_function(n) for n in names]


def check_names(names: list[str]) -> None:
    """Fail early on an unknown verifier or a reward-model path that is not a model folder."""
    from heedful.annotate.verifiers import spec
    for name in names:
        if _is_rm(name):
            path = Path(name.removeprefix("rm:"))
            if not (path / "config.json").is_file():
                raise InvalidInput(f"{path} is not a model folder; train one with `heedful train reward`")
        else:
            spec(name.removeprefix("verifier:"))


def _is_rm(name: str) -> bool:
    return name.startswith("rm:") or Path(name).is_dir()


def reward_function(name: str) -> RewardFn:
    if _is_rm(name):
        return reward_model_function(Path(name.removeprefix("rm:")))
    return verifier_function(name.removeprefix("verifier:"))


def _text(x) -> str:
    """A TRL prompt/completion is a string or a list of messages; use the last message's text."""
    if isinstance(x, str):
        return x
    return str(x[-1]["content"]) if x else ""


def verifier_function(name: str) -> RewardFn:
    from heedful.annotate.verifiers import spec  # imported lazily: annotate is optional for training
    s = spec(name)

    def reward(prompts, completions, **kw):
        meta = {k: v for k, v in kw.items() if k not in TRL_KWARGS}
        out = []
        for i, (p, c) in enumerate(zip(prompts, completions)):
            try:
                o = s.fn(_text(p), _text(c), **{k: v[i] for k, v in meta.items()})
                out.append(float(o.score) if o.score is not None else float(bool(o.passed)))
            except Exception:  # a failing check is a missing reward, never a guessed one
                out.append(None)
        return out
    reward.__name__ = f"verifier_{name}"
    return reward


def reward_model_function(path: Path) -> RewardFn:
    import torch

    from heedful.learn.train.loading import load_model, load_tokenizer
    if not (path / "config.json").is_file():
        raise InvalidInput(f"{path} is not a model folder; train one with `heedful train reward`")
    tok = load_tokenizer(path)
    model = load_model(path, "seq_cls", tok.pad_token_id).eval()

    def reward(prompts, completions, **kw):
        texts = [_join(tok, p, c) for p, c in zip(prompts, completions)]
        with torch.no_grad():
            enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=1024)
            return model(**enc).logits[:, 0].float().tolist()
    reward.__name__ = f"rm_{path.name}"
    return reward


def _join(tok, prompt, completion) -> str:
    if isinstance(prompt, str):
        return prompt + _text(completion)
    return tok.apply_chat_template(list(prompt) + list(completion), tokenize=False)
