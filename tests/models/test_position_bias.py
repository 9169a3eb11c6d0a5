"""Log-CPB coordinates, index and bias against the paper's formulas computed by hand."""
import math

import pytest
import torch

from swinv2_mm.models.position_bias import (build_cpb_mlp, continuous_position_bias,
                                            relative_coords_table, relative_position_index)

CPU = torch.device('cpu')


def log_spaced(d, divisor):
    t = d / divisor * 8
    return math.copysign(math.log2(1 + abs(t)) / math.log2(8), t) if t else 0.0


@pytest.mark.parametrize('window,pretrained', [((3, 5), (0, 0)), ((12, 12), (8, 8)), ((7, 4), (6, 6))])
def test_coords_table_matches_formula(window, pretrained):
    table = relative_coords_table(window, pretrained, CPU)
    wh, ww = window
    assert table.shape == ((2 * wh - 1) * (2 * ww - 1), 2)
    div = [(p if p else w) - 1 for w, p in zip(window, pretrained)]
    for dh in range(-(wh - 1), wh):
        for dw in range(-(ww - 1), ww):
            row = table[(dh + wh - 1) * (2 * ww - 1) + (dw + ww - 1)]
            assert row[0].item() == pytest.approx(log_spaced(dh, div[0]), abs=1e-6)
            assert row[1].item() == pytest.approx(log_spaced(dw, div[1]), abs=1e-6)


def test_window_of_one_has_zero_coordinates():
    assert torch.equal(relative_coords_table((1, 1), (0, 0), CPU), torch.zeros(1, 2))
    assert torch.equal(relative_coords_table((1, 3), (0, 0), CPU)[:, 0], torch.zeros(5))


def test_relative_index_formula():
    wh, ww = 3, 4
    index = relative_position_index((wh, ww), CPU)
    coords = [(h, w) for h in range(wh) for w in range(ww)]
    for i, (hi, wi) in enumerate(coords):
        for j, (hj, wj) in enumerate(coords):
            assert index[i, j] == (hi - hj + wh - 1) * (2 * ww - 1) + (wi - wj + ww - 1)


def test_bias_is_16_sigmoid_of_meta_network():
    torch.manual_seed(0)
    mlp = build_cpb_mlp(2, 3)
    bias = continuous_position_bias(mlp, (4, 4), (0, 0))
    table = relative_coords_table((4, 4), (0, 0), CPU)
    raw = torch.relu(table @ mlp[0].weight.T + mlp[0].bias) @ mlp[2].weight.T  # (T, heads)
    index = relative_position_index((4, 4), CPU)
    expected = 16 * torch.sigmoid(raw[index].permute(2, 0, 1))
    assert bias.shape == (3, 16, 16)
    assert torch.allclose(bias, expected, atol=1e-6)
    assert tuple(mlp[0].weight.shape) == (512, 2) and mlp[2].bias is None
