"""The attention kernels: the static rule picks a kernel that really runs fused (SDPA's own
choice is checked), and the fused training kernel equals explicit products in values and
in all four gradients, shift and pad masks included."""
import pytest
import torch
import torch.nn.functional as F

from swinv2_mm.models.attention_kernels import (choose_kernel, explicit_attention,
                                                flash_with_bias)
from swinv2_mm.models.windows import window_attention_mask
from tests.helpers import max_abs_diff
from tests.models.test_attention import assert_same_training
from tests.models.test_swin_v2 import small_model

SDPA_MATH = 0  # torch's index of the math backend in _fused_sdp_choice


def masked_inputs(dtype, window=4, batch=2, heads=2, dim=8, grad=True):
    """q, k, v (B, nW*h, N, d) and a (1, nW*h, N, N) bias with the shift and pad masks of a
    10x7 map (-100 and -1e4 entries), non-zero everywhere else."""
    mask = window_attention_mask((10, 7), (window, window), (window // 2,) * 2,
                                 torch.device('cpu'))
    nw, n = mask.shape[:2]
    q, k, v = (torch.randn(batch, nw * heads, n, dim, dtype=torch.float64) for _ in 'qkv')
    bias = torch.randn(1, heads, n, n, dtype=torch.float64) + mask[:, None].double()
    tensors = [t.to(dtype).requires_grad_(grad)
               for t in (3 * q, k, v, bias.reshape(1, nw * heads, n, n))]
    return tensors


def values_and_grads(fn, tensors):
    for t in tensors:
        t.grad = None
    out = fn(*tensors)
    (out.double() ** 2).sum().backward()
    return [out.detach()] + [t.grad.clone() for t in tensors]


@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_flash_with_bias_equals_explicit_products(dtype, tol):
    tensors = masked_inputs(dtype)
    fused = values_and_grads(flash_with_bias, tensors)
    plain = values_and_grads(lambda q, k, v, b: explicit_attention(q, k, v, b, 0.0, False),
                             tensors)
    for name, a, b in zip(('out', 'q', 'k', 'v', 'bias'), fused, plain):
        assert max_abs_diff(a, b) < tol * max(1.0, b.abs().max().item()), name


def test_flash_backward_makes_no_denormals():
    """Masked keys have probabilities near exp(-100): recomputed as zero, so no gradient
    holds denormal numbers (10-40x slower arithmetic on x86)."""
    q, k, v, bias = masked_inputs(torch.float32)
    out = flash_with_bias(q, k, v, bias)
    (out * 1e-6).sum().backward()  # small gradients, as deep in a network
    for t in (q, k, v, bias):
        tiny = (t.grad != 0) & (t.grad.abs() < torch.finfo(torch.float32).tiny)
        assert not tiny.any()


def test_rule_and_the_kernel_sdpa_really_takes():
    q, k, v, bias = masked_inputs(torch.float32, grad=False)
    assert choose_kernel(q, bias, 0.0, None) == 'sdpa'
    assert torch._fused_sdp_choice(q, k, v, bias, 0.0, False, scale=1.0) != SDPA_MATH
    # the 3-D mask the module passed before takes the math path
    assert torch._fused_sdp_choice(q, k, v, bias[0], 0.0, False, scale=1.0) == SDPA_MATH
    q, k, v, bias = masked_inputs(torch.float32)
    with torch.no_grad():
        assert choose_kernel(q, bias, 0.0, None) == 'sdpa'
    assert choose_kernel(q, bias, 0.0, None) == 'flash_with_bias'  # bias needs a gradient
    assert torch._fused_sdp_choice(q, k, v, bias, 0.0, False, scale=1.0) == SDPA_MATH
    assert choose_kernel(q, bias, 0.1, None) == 'explicit'  # dropout
    assert choose_kernel(q, bias, 0.0, False) == 'explicit'
    assert choose_kernel(q.bfloat16(), bias, 0.0, None) == 'explicit'  # 16 tokens in bf16
    big = torch.zeros(1, 1, 144, 8, dtype=torch.bfloat16)
    assert choose_kernel(big, bias, 0.0, None) == 'flash_with_bias'


def test_sdpa_kernel_equals_explicit_products():
    q, k, v, bias = masked_inputs(torch.float32, grad=False)
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
    assert max_abs_diff(fused, explicit_attention(q, k, v, bias, 0.0, True)) < 1e-5


def test_model_trains_the_same_with_every_kernel():
    """The default rule (flash_with_bias in training, SDPA in eval) against explicit
    products, float64, with padded and shifted windows."""
    x = torch.randn(2, 3, 61, 75, dtype=torch.float64)
    rule = small_model(window_size=[6, 5, 4, 3]).double()
    plain = small_model(window_size=[6, 5, 4, 3], fused_attn=False).double()
    plain.load_state_dict(rule.state_dict())
    assert_same_training(plain, rule, x, tol=1e-9)
