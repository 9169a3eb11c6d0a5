"""AutocastOptimWrapper: autocast on the device it trains on, loss scaling for float16 only,
and configuration errors that name the option."""
import pytest
import torch

from swinv2_mm.amp import AutocastOptimWrapper
from swinv2_mm.models import ConfigError


def wrapper(**kwargs):
    model = torch.nn.Linear(4, 4)
    return model, AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                       **kwargs)


def test_bfloat16_on_the_cpu_without_loss_scaling():
    model, wrap = wrapper()
    with wrap.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and wrap.device_type == 'cpu'
    assert not wrap.loss_scaler.is_enabled() and wrap.state_dict()['loss_scaler'] == {}
    loss = out.float().square().mean()
    wrap.update_params(loss)
    assert model.weight.grad is None or not model.weight.grad.abs().sum()  # zeroed after step


def test_float16_with_a_fixed_scale_keeps_it():
    model, wrap = wrapper(dtype='float16', loss_scale=512.0)
    for _ in range(3):
        with wrap.optim_context(model):
            loss = model(torch.randn(2, 4)).float().square().mean()
        wrap.update_params(loss)
    assert wrap.loss_scaler.get_scale() == 512.0


@pytest.mark.parametrize('kwargs, message', [
    (dict(dtype='float32'), 'optim_wrapper.dtype'),
    (dict(dtype='half'), 'optim_wrapper.dtype'),
    (dict(dtype='float16', loss_scale='auto'), 'optim_wrapper.loss_scale'),
    (dict(dtype='float16', loss_scale=True), 'optim_wrapper.loss_scale'),
])
def test_bad_options_name_the_option(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        wrapper(**kwargs)
