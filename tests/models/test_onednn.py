"""oneDNN-routed linear layers compute what `F.linear` computes, forward and backward, and only where they may."""

from __future__ import annotations

import copy

import pytest
import torch

from heedful.models import onednn

pytestmark = pytest.mark.skipif(not onednn.available(), reason="this torch has no oneDNN")


def small_llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture
def calls(monkeypatch):
    """Counts the products that went through oneDNN."""
    seen = []
    real = onednn.linear

    def counting(x, w, b):
        seen.append(tuple(w.shape))
        return real(x, w, b)
    monkeypatch.setattr(onednn, "linear", counting)
    return seen


def pair():
    plain = small_llama()
    routed = copy.deepcopy(plain)
    assert onednn.route(routed) == 2 * 7 + 1  # q k v o gate up down per layer, and the LM head
    return plain, routed


def test_inference_goes_through_onednn_with_the_same_logits(calls):
    plain, routed = pair()
    ids = torch.randint(0, 128, (3, 11))
    with torch.inference_mode():
        want, got = plain(input_ids=ids).logits, routed(input_ids=ids).logits
    assert len(calls) == 15
    assert torch.allclose(want, got, atol=1e-5, rtol=1e-4)


def test_frozen_layers_under_lora_backprop_through_onednn_with_the_same_gradients(calls):
    from peft import LoraConfig, get_peft_model
    plain, routed = pair()
    cfg = dict(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    grads = []
    for model in (plain, routed):
        torch.manual_seed(1)
        peft = get_peft_model(model, LoraConfig(**cfg))
        ids = torch.randint(0, 128, (2, 9))
        peft(input_ids=ids, labels=ids).loss.backward()
        grads.append({n: p.grad for n, p in peft.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == 2 * 2 * 7
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-6, rtol=1e-4), name
    # 15 forwards (14 LoRA base layers and the head) and 12 backwards: layer 0's q, k and v
    # read the embeddings, which need no gradient, so nothing flows back through them
    assert len(calls) == 15 + 12


def test_trainable_weights_and_autocast_keep_torchs_linear(calls):
    plain, routed = pair()
    ids = torch.randint(0, 128, (2, 7))
    for model in (plain, routed):
        model(input_ids=ids, labels=ids).loss.backward()  # full fine-tuning: weights need their gradient
    assert calls == []
    w = "model.layers.0.mlp.down_proj.weight"
    want, got = dict(plain.named_parameters())[w].grad, dict(routed.named_parameters())[w].grad
    assert torch.allclose(want, got, atol=1e-6, rtol=1e-5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = routed(input_ids=ids).logits
    assert calls == [] and out.dtype == torch.bfloat16


def test_unroute_puts_torchs_linear_back(calls):
    _, routed = pair()
    assert onednn.unroute(routed) == 15 and onednn.unroute(routed) == 0
    with torch.inference_mode():
        routed(input_ids=torch.randint(0, 128, (1, 5)))
    assert calls == []


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("HEEDFUL_ONEDNN", "0")
    assert not onednn.available()
    assert onednn.route(small_llama()) == 0


def test_layers_with_a_bias_forward_and_backward(calls):
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.GELU(), torch.nn.Linear(5, 3)).requires_grad_(False)
    routed = copy.deepcopy(plain)
    assert onednn.route(routed) == 2
    x = torch.randn(4, 2, 6)
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    for model, xi in zip((plain, routed), xs):
        model(xi).pow(2).sum().backward()
    assert len(calls) == 4
    assert torch.allclose(plain(x), routed(x), atol=1e-6)
    assert torch.allclose(xs[0].grad, xs[1].grad, atol=1e-6)


def test_the_transformers_backend_routes_its_model(tiny):
    routed = [m for m in tiny.model.modules() if "forward" in vars(m)]
    linears = [m for m in tiny.model.modules() if type(m) is torch.nn.Linear]
    assert routed == linears and len(linears) == 2 * 7 + 1


def test_layers_with_their_own_forward_or_hook_are_left_alone():
    model = small_llama()
    own = model.model.layers[0].self_attn.q_proj
    own.forward = lambda x: x  # e.g. something a user or another library set
    model.model.layers[1].mlp.up_proj._hf_hook = object()  # accelerate's offloading hook
    assert onednn.route(model) == 15 - 2
    assert own.forward(3) == 3


def test_a_second_derivative_through_a_frozen_layer_raises_instead_of_being_wrong():
    layer = torch.nn.Linear(4, 3).requires_grad_(False)
    onednn.route(torch.nn.Sequential(layer))
    x = torch.randn(2, 4, requires_grad=True)
    (g,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()
