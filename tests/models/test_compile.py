"""The backbone under torch.compile: one graph without breaks in eval and in training (the
fused attention's custom backward included) with eager's results, and one graph for every
input padded to a fixed size, the size bucket the README recommends for detection."""
import torch
import torch._dynamo
import torch.nn.functional as F
from torch._dynamo.utils import counters

from tests.helpers import max_abs_diff
from tests.models.test_attention import outputs_and_grads
from tests.models.test_swin_v2 import small_model


def test_one_graph_without_breaks_in_eval_and_training():
    model = small_model(window_size=[6, 5, 4, 3])
    x = torch.randn(1, 3, 61, 75)  # padded and shifted windows
    with torch.no_grad():
        explained = torch._dynamo.explain(model)(x)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    explained = torch._dynamo.explain(model.train())(x)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)


def test_compiled_training_equals_eager():
    """aot_eager traces forward and backward as inductor does, without generating code."""
    x = torch.randn(2, 3, 61, 75)
    eager = small_model(window_size=[6, 5, 4, 3])
    twin = small_model(window_size=[6, 5, 4, 3])
    twin.load_state_dict(eager.state_dict())
    compiled = torch.compile(twin, backend='aot_eager')
    ref_out, ref_grad = outputs_and_grads(eager, x)
    out, grad = outputs_and_grads(compiled, x)
    assert all(max_abs_diff(a, b) < 1e-5 for a, b in zip(ref_out, out))
    for name, g in ref_grad.items():
        assert max_abs_diff(g, grad[f'_orig_mod.{name}']) < 1e-5 * max(1.0, g.abs().max()), name


def count_graphs(model, inputs) -> int:
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend='eager', dynamic=False)
    with torch.no_grad():
        for x in inputs:
            compiled(x)
    return counters['stats']['unique_graphs']


def test_fixed_size_padding_bounds_recompiles():
    model = small_model(window_size=[6, 5, 4, 3])
    images = [torch.randn(1, 3, h, w) for h, w in ((61, 75), (48, 80), (64, 50))]
    assert count_graphs(model, images) == 3  # one graph per input size
    padded = [F.pad(x, (0, 80 - x.shape[-1], 0, 64 - x.shape[-2])) for x in images]
    assert count_graphs(model, padded) == 1
