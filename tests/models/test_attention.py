"""Window attention options: chunked (sequential) attention and per-stage checkpointing give
the same results; the inference bias cache follows the weights; half precision stays finite."""
import copy

import pytest
import torch

from swinv2_mm.models import ConfigError
from tests.helpers import max_abs_diff
from tests.models.test_swin_v2 import small_model


def outputs_and_grads(model, x):
    model.train()
    model.zero_grad(set_to_none=True)
    outs = model(x)
    sum((o.double() ** 2).mean() for o in outs).backward()
    return [o.detach() for o in outs], {n: p.grad.clone() for n, p in model.named_parameters()}


def assert_same_training(reference, other, x, tol=1e-5):
    ref_out, ref_grad = outputs_and_grads(reference, x)
    out, grad = outputs_and_grads(other, x)
    assert all(max_abs_diff(a, b) < tol for a, b in zip(ref_out, out))
    for name, g in ref_grad.items():
        assert max_abs_diff(g, grad[name]) < tol * max(1.0, g.abs().max().item()), name


@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('chunk', [1, 3, 7])
def test_chunked_attention_equals_all_windows_at_once(fused, chunk):
    """Chunks that do not divide the window count, with shift and pad masks (61x75) and
    without (a map of exactly one window per stage uses no mask)."""
    for size in ((61, 75), (48, 48)):
        x = torch.randn(2, 3, *size)
        plain = small_model(window_size=[6, 5, 4, 3], fused_attn=fused)
        chunked = small_model(window_size=[6, 5, 4, 3], fused_attn=fused, attn_chunk_size=chunk)
        chunked.load_state_dict(plain.state_dict())
        with torch.no_grad():
            assert all(max_abs_diff(a, b) < 1e-5 for a, b in zip(plain(x), chunked(x)))
        assert_same_training(plain, chunked, x)


def test_checkpointing_per_stage_gives_the_same_gradients():
    x = torch.randn(2, 3, 50, 44)
    plain = small_model(window_size=[6, 5, 4, 3])
    lean = small_model(window_size=[6, 5, 4, 3], with_cp=[True, True, False, False],
                       attn_chunk_size=[4, 0, 2, 0])
    lean.load_state_dict(plain.state_dict())
    assert [s.with_cp for s in lean.stages] == [True, True, False, False]
    assert_same_training(plain, lean, x)


def test_per_stage_options_are_checked():
    with pytest.raises(ConfigError, match='with_cp: expected a bool or a list of 4'):
        small_model(with_cp=[True, False])
    with pytest.raises(ConfigError, match='attn_chunk_size: expected 0 .off. or a positive'):
        small_model(attn_chunk_size=-2)


def test_inference_bias_cache_follows_the_weights():
    model = small_model(window_size=[6, 5, 4, 3])
    attn = model.stages[0].blocks[0].attn
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        before = model(x)
        first = attn.position_bias((6, 6))
        assert attn.position_bias((6, 6)) is first  # cached while the weights stay
        assert attn.position_bias((3, 3)).shape[-1] == 9  # another window: its own bias

    other = small_model(window_size=[6, 5, 4, 3])  # different random weights
    with torch.no_grad():
        expected = other(x)
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert all(max_abs_diff(a, b) < 1e-6 for a, b in zip(model(x), expected))
        assert attn.position_bias((6, 6)) is not first

    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    reference = copy.deepcopy(model)
    outputs_and_grads(model, x)
    optimizer.step()
    model.eval()
    with torch.no_grad():  # after the step the cached bias would be stale
        fresh = copy.deepcopy(model)
        for m in fresh.modules():
            if hasattr(m, '_bias_cache'):
                m._bias_cache.clear()
        assert all(max_abs_diff(a, b) < 1e-6 for a, b in zip(model(x), fresh(x)))
        assert any(max_abs_diff(a, b) > 1e-4 for a, b in zip(model(x), reference(x)))


def test_training_does_not_use_the_cache():
    model = small_model(window_size=[6, 5, 4, 3]).train()
    attn = model.stages[0].blocks[0].attn
    bias = attn.position_bias((6, 6))
    assert bias.requires_grad and not attn._bias_cache


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_precision_stays_finite_and_close(dtype):
    """Inputs of realistic magnitude (a few units, as after normalisation) and larger ones."""
    model = small_model(window_size=[6, 5, 4, 3])
    x = torch.randn(2, 3, 61, 75) * 3
    with torch.no_grad():
        reference = model(x)
        half = copy.deepcopy(model).to(dtype)(x.to(dtype))
        for a, b in zip(reference, half):
            assert torch.isfinite(b).all()
            assert torch.cosine_similarity(a.flatten(), b.float().flatten(), 0) > 0.995
        with torch.autocast('cpu', dtype=torch.bfloat16):
            auto = model(x * 30)
        assert all(torch.isfinite(o).all() for o in auto)
