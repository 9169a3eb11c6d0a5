"""AutocastOptimWrapper: autocast on the device it trains on, loss scaling for float16 only,
and configuration errors that name the option."""
import io

import pytest
import torch

from swinv2_mm.amp import AutocastOptimWrapper, optim_wrapper
from swinv2_mm.models import ConfigError


def wrapper(**kwargs):
    model = torch.nn.Linear(4, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, AutocastOptimWrapper(optimizer=optimizer, **kwargs)


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


def checkpointed_state(**kwargs) -> dict:
    """A wrapper's state after two steps, through torch.save and the weights-only loader: what
    a checkpoint of a run in that precision hands to the resuming wrapper."""
    model, wrap = wrapper(**kwargs)
    for _ in range(2):
        with wrap.optim_context(model):
            loss = model(torch.randn(2, 4)).float().square().mean()
        wrap.update_params(loss)
    buffer = io.BytesIO()
    torch.save(wrap.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.fixture
def logged(monkeypatch):
    messages = []
    monkeypatch.setattr(optim_wrapper, 'print_log', lambda msg, **kwargs: messages.append(msg))
    return messages


FLOAT16 = dict(dtype='float16', loss_scale=dict(init_scale=1024.0, growth_interval=1))


def test_bfloat16_checkpoint_resumes_in_float16_with_a_fresh_scale(logged):
    saved = checkpointed_state()
    assert saved['loss_scaler'] == {}  # what GradScaler.load_state_dict refuses when enabled
    model, wrap = wrapper(**FLOAT16)
    wrap.load_state_dict(saved)
    assert wrap.loss_scaler.is_enabled() and wrap.loss_scaler.get_scale() == 1024.0
    assert logged == ['resume: the checkpoint holds no float16 loss scale (trained in bfloat16 '
                      'or float32): float16 training starts with a fresh one, scale 1024.0']
    with wrap.optim_context(model):
        loss = model(torch.randn(2, 4)).float().square().mean()
    wrap.update_params(loss)  # it trains on, its scale growing
    assert wrap.loss_scaler.get_scale() == 2048.0


def test_float16_checkpoint_resumes_in_bfloat16_without_its_scale(logged):
    saved = checkpointed_state(**FLOAT16)
    assert saved['loss_scaler']['scale'] == 4096.0  # grown at each of the two steps
    model, wrap = wrapper()
    wrap.load_state_dict(saved)
    assert not wrap.loss_scaler.is_enabled()
    assert logged == ["resume: the checkpoint's float16 loss scale (4096.0) is not used: "
                      "bfloat16 needs none"]


def test_float16_checkpoint_resumes_in_float16_with_its_scale(logged):
    saved = checkpointed_state(**FLOAT16)
    model, wrap = wrapper(**FLOAT16)
    wrap.load_state_dict(saved)
    assert wrap.loss_scaler.get_scale() == 4096.0 and logged == []


@pytest.mark.parametrize('source', [{}, FLOAT16], ids=['from_bfloat16', 'from_float16'])
@pytest.mark.parametrize('target', [{}, FLOAT16], ids=['to_bfloat16', 'to_float16'])
def test_the_momentum_resumes_across_precisions(source, target):
    saved = checkpointed_state(**source)
    _, wrap = wrapper(**target)
    wrap.load_state_dict(saved)
    momenta = [s['momentum_buffer'] for s in wrap.optimizer.state_dict()['state'].values()]
    assert len(momenta) == 2  # weight and bias
    for got, want in zip(momenta, [s['momentum_buffer'] for s in saved['state'].values()]):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
