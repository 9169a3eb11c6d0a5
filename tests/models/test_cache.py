"""The one caching mechanism: bounded, least recently used first out, and bypassed while
torch.compile traces, so that the backbone compiles without graph breaks."""
from unittest import mock

import torch

from swinv2_mm.models import SwinTransformerV2
from swinv2_mm.models.cache import TensorCache
from swinv2_mm.models.windows import window_attention_mask


def test_bounded_and_least_recently_used_first_out():
    cache, calls = TensorCache(2), []

    def compute(key):
        return lambda: calls.append(key) or torch.tensor(key)

    a = cache.get(1, compute(1))
    cache.get(2, compute(2))
    assert cache.get(1, compute(1)) is a  # hit: 1 becomes the most recent
    cache.get(3, compute(3))  # evicts 2, the least recently used
    assert len(cache) == 2 and calls == [1, 2, 3]
    cache.get(2, compute(2))
    assert calls == [1, 2, 3, 2] and cache.get(1, compute(1)) is not a  # 1 was evicted by 2


def test_window_masks_stay_bounded_over_many_input_sizes():
    cache = window_attention_mask.cache
    cache.clear()
    for h in range(9, 9 + 3 * cache.maxsize):
        window_attention_mask((h, 12), (4, 4), (2, 2), torch.device('cpu'))
    assert len(cache) == cache.maxsize


def test_compiling_bypasses_every_cache():
    cache = TensorCache(4)
    with mock.patch('torch.compiler.is_compiling', return_value=True):
        first = cache.get('k', lambda: torch.zeros(1))
        assert cache.get('k', lambda: torch.ones(1)).item() == 1 and len(cache) == 0
    assert first.item() == 0


def test_backbone_traces_without_graph_breaks():
    """torch._dynamo.explain: one graph in inference and in training, for a padded input."""
    model = SwinTransformerV2(dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)),
                              window_size=4)
    x = torch.randn(1, 3, 61, 75)
    try:
        with torch.no_grad():
            explained = torch._dynamo.explain(model.eval())(x)
        assert (explained.graph_count, explained.graph_break_count) == (1, 0)
        torch._dynamo.reset()
        explained = torch._dynamo.explain(model.train())(x)
        assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    finally:
        torch._dynamo.reset()
