"""The protocol between bench scripts and `bench/run_all.py` (what `make bench` runs).

Every `bench/*.py` script (files starting with `_` are helpers) accepts:

    --quick       a smaller run that still measures every figure against its peer (minutes, not hours)
    --json FILE   also write the figures to FILE as {"figures": [FIGURE, ...]}

FIGURE is one measured claim with the peer it was measured against in the same run:

    {"name": "SDK ingest", "value": 2815.0, "unit": "records/s",
     "peer": "feedloop compare()", "peer_value": 286.0,
     "ratio": 9.8,            # value / peer_value, or peer_value / value when lower is better
     "better": "higher",      # or "lower" (seconds, bytes)
     "goal": "≥20× feedloop", # optional: the target this figure is held to
     "met": false,            # optional: whether the goal is met (null when not applicable)
     "note": "100k rows"}     # optional

`figure()` builds one (computing the ratio so that >1 always means heedful is
better) and `write_figures()` writes the file; scripts may also write the
dict by hand. Kept apart from `_common.py`, which holds measuring helpers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_protocol_args(ap: argparse.ArgumentParser, quick_help: str = "a smaller run (minutes)") -> None:
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", type=Path, help="also write the figures here (see bench/_runner.py)")


def figure(name: str, value: float, unit: str, peer: str | None = None, peer_value: float | None = None,
           better: str = "higher", goal: str | None = None, met: bool | None = None, note: str | None = None) -> dict:
    """One figure; `ratio` > 1 means better than the peer, whichever direction is better."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    ratio = None
    if peer_value and value:
        ratio = value / peer_value if better == "higher" else peer_value / value
    return {"name": name, "value": value, "unit": unit, "peer": peer, "peer_value": peer_value,
            "ratio": None if ratio is None else round(ratio, 3), "better": better, "goal": goal, "met": met,
            "note": note}


def write_figures(path: Path | None, figures: list[dict], **extra) -> None:
    """Write {"figures": [...], **extra} to `path` (no-op without --json)."""
    if path is not None:
        Path(path).write_text(json.dumps({"figures": figures, **extra}, indent=2, ensure_ascii=False))


def read_figures(path: Path) -> list[dict]:
    """The figures a script wrote: {"figures": [...]} or a bare list; [] when neither."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    figs = data.get("figures") if isinstance(data, dict) else data
    return [f for f in figs if isinstance(f, dict) and "name" in f and "value" in f] if isinstance(figs, list) else []
