"""`BuildConfig`, alone: the CLI builds its `heedful build` options from the fields' help while
Typer registers commands, so this module imports nothing heavy (no numpy, SQLAlchemy, pyarrow) —
every `heedful …` call pays for what it imports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class BuildConfig:
    """How a rule and the filters after it behave; each field's help doubles as CLI help."""

    aggregate: str = field(default="majority", metadata={"help": "Across annotators: majority | mean | bt."})
    weighted: bool = field(default=False, metadata={"help": "Weight sources by Dawid–Skene reliability."})
    on_tie: str = field(default="drop", metadata={"help": "Exact draws between labels: drop | random (seeded)."})
    pairing: str = field(default="all-pairs", metadata={"help": "ranking/rating/outcome pairs: all-pairs | best-vs-rest."})
    aspect: str | None = field(default=None, metadata={"help": "Use only ratings of this aspect."})
    aspect_weights: dict[str, float] | None = field(
        default=None, metadata={"help": "Weighted sum of aspects (normalised scores), e.g. {'helpful': 2, 'safe': 1}."})
    min_agreement: float = field(default=0.0, metadata={"help": "Drop examples whose annotators agree less than this."})
    min_margin: float = field(default=0.0, metadata={"help": "Drop pairs whose margin is below this (ratings: on [0, 1])."})
    min_score: float = field(default=0.75, metadata={"help": "sft top-rated / outcome pass threshold on [0, 1]."})
    dedup: bool = field(default=False, metadata={"help": "Remove exact and near duplicates (MinHash)."})
    near_dup_threshold: float = field(default=0.9, metadata={"help": "Jaccard similarity over word 3-shingles."})
    balance_length: bool = field(default=True, metadata={"help": "Keep chosen from being systematically longer."})
    diverse: int | None = field(default=None, metadata={"help": "Keep this many examples, farthest-point over TF-IDF."})
    split: float = field(default=0.0, metadata={"help": "Fraction of prompts held out as the test split."})
    seed: int = field(default=0, metadata={"help": "Seed for ties, balancing, diversity and the split."})
    good_phrase: str = field(default="A helpful answer:", metadata={"help": "hindsight: phrase before a good answer."})
    bad_phrase: str = field(default="An unhelpful answer:", metadata={"help": "hindsight: phrase before a bad answer."})

    def to_dict(self) -> dict:
        return asdict(self)
