"""The model a training run loads has its frozen layers' products on oneDNN (models/onednn.py)."""

from __future__ import annotations

import pytest
import torch

from heedful.models import onednn


@pytest.mark.skipif(not onednn.available(), reason="this torch has no oneDNN")
def test_load_model_routes_every_linear_layer(tiny_model_dir):
    from heedful.learn.train.loading import load_model
    model = load_model(tiny_model_dir, "causal", pad_token_id=None)
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    assert linears and all("forward" in vars(m) for m in linears)
    assert onednn.unroute(model) == len(linears)
