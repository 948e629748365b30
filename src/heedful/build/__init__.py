"""Build: stored feedback → training datasets in TRL's formats, by explicit, named rules.

    from heedful.build import build, BuildConfig
    result = build(store, "preference_pairs", "data/dpo", filters=["source=human"],
                   config=BuildConfig(aggregate="bt", split=0.1, dedup=True))

A rule (see `heedful.build.rules`) turns feedback of some kinds into examples
that remember the feedback ids they came from; aggregation (`aggregate`)
merges annotators; selection (`select`) filters; `output` writes TRL's exact
columns; the dataset is registered in the store with its lineage.
"""

import importlib

from heedful.build.config import BuildConfig

# The rest loads on first use (PEP 562): `heedful.build.config` is imported while the CLI starts,
# and importing a submodule runs this file; core and pipeline pull in numpy, SQLAlchemy, pyarrow.
_LAZY = {"RULES": "core", "Example": "core", "get_rule": "core", "rule": "core",
         "BuildResult": "pipeline", "build": "pipeline", "parse_filters": "pipeline"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


def all_rules() -> dict:
    """Every registered rule by name (importing the built-ins first)."""
    importlib.import_module("heedful.build.rules")
    return dict(importlib.import_module("heedful.build.core").RULES)


__all__ = ["BuildConfig", "BuildResult", "Example", "RULES", "build", "get_rule", "parse_filters", "rule", "all_rules"]
