"""The float32-island mechanism: what it casts, when autocast is off, and that it changes
nothing without autocast."""
from collections import namedtuple

import torch

from swinv2_mm.amp import autocast_off, float32_island, float32_methods, to_float32


def test_to_float32_casts_low_precision_tensors_in_containers_only():
    Pair = namedtuple('Pair', 'a b')
    half, bf, ints, f64 = (torch.ones(2, dtype=d) for d in
                           (torch.float16, torch.bfloat16, torch.int64, torch.float64))
    out = to_float32(dict(x=[half, (bf, ints)], y=Pair(f64, 'text'), z=None))
    assert out['x'][0].dtype == torch.float32 and out['x'][1][0].dtype == torch.float32
    assert out['x'][1][1] is ints and out['y'].a is f64 and out['y'].b == 'text'
    assert isinstance(out['y'], Pair) and isinstance(out['x'][1], tuple)


def test_autocast_off_only_inside():
    with torch.autocast('cpu', dtype=torch.bfloat16):
        with autocast_off():
            assert not torch.is_autocast_enabled('cpu')
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
        assert torch.is_autocast_enabled('cpu')
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


class Head(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)

    def loss(self, scores, targets):
        self.seen = (scores.dtype, torch.is_autocast_enabled('cpu'))
        return torch.nn.functional.cross_entropy(self.fc(scores), targets)


@float32_methods('loss')
class IslandHead(Head):
    pass


def test_island_methods_see_float32_with_autocast_off_and_forward_stays_low():
    head = IslandHead()
    x, y = torch.randn(8, 4), torch.randint(0, 4, (8,))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        scores = head(x)
        loss = head.loss(scores, y)
    assert scores.dtype == torch.bfloat16
    assert head.seen == (torch.float32, False) and loss.dtype == torch.float32
    loss.backward()  # gradients flow back through the cast into the low-precision forward
    assert torch.isfinite(head.fc.weight.grad).all()
    assert IslandHead.float32_methods == ('loss',) and IslandHead.loss.float32_island


def test_island_changes_nothing_without_autocast():
    plain, island = Head(), IslandHead()
    island.load_state_dict(plain.state_dict())
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.randint(0, 4, (8,))
    plain.double(), island.double()
    assert torch.equal(plain.loss(plain(x), y), island.loss(island(x), y))
    assert island.seen == (torch.float64, False)  # float64 is not cast down
    assert float32_island(torch.add)(torch.ones(1), 1).dtype == torch.float32
