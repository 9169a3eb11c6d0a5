"""Loading a checkpoint runs no code, on every path: crafted pickles (a ``getattr`` chain to
``exec``, BUILD gadgets with allowed callables) placed in each part of a runner checkpoint are
refused by name, and the payload never runs; ``meta['config']`` (Python that mmengine's resume
executes) never reaches it; genuine checkpoints still load and resume."""
import copy
import functools
import http.server
import os
import pickle
import signal
import threading
import traceback
from collections import Counter, OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel, BaseModule

import swinv2_mm  # noqa: F401  (installs the allow-list, as any config's custom_imports does)
from swinv2_mm.checkpoint import inspect_checkpoint, load_pretrained, read_checkpoint
from swinv2_mm.checkpoint.files import (CheckpointFileError, allow_mmengine_checkpoints,
                                        check_checkpoint_file, history_buffer_method,
                                        load_checkpoint_file, mmengine_checkpoint_globals,
                                        read_runner_checkpoint, weights_only_loading)
from swinv2_mm.engine import SafeCheckpointRunner
from swinv2_mm.models import SwinTransformerV2
from tests.security.crafted import (Reduce, checkpoint_pickle, getattr_chain_gadget,
                                    marker_code, ordered_dict_with, write_torch_file)

PLACES = ('meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers')


@pytest.fixture
def marker(tmp_path):
    """The file a payload would create; every test asserts it is never there."""
    path = tmp_path / 'payload_ran'
    yield path
    assert not path.exists(), 'a payload ran'


def getattr_gadget_file(tmp_path, marker, where: str) -> str:
    def gadget(p):
        getattr_chain_gadget(p, marker_code(marker))
    return write_torch_file(tmp_path / f'getattr_in_{where}.pth', checkpoint_pickle(gadget, where))


def test_the_getattr_gadget_runs_code_under_the_old_allow_list(tmp_path):
    """The crafted file is a real attack: with bare ``getattr`` on torch's allow-list (what
    swinv2_mm added before), loading and deep-copying the message hub runs the payload."""
    marker = tmp_path / 'payload_ran'
    path = getattr_gadget_file(tmp_path, marker, 'message_hub')
    torch.serialization.clear_safe_globals()
    try:
        torch.serialization.add_safe_globals([getattr])
        copy.deepcopy(torch.load(path, weights_only=True)['message_hub'])
    finally:
        torch.serialization.clear_safe_globals()
        allow_mmengine_checkpoints()
    assert marker.exists()


@pytest.mark.parametrize('where', PLACES)
def test_getattr_chains_are_refused_by_every_reader(tmp_path, marker, where):
    path = getattr_gadget_file(tmp_path, marker, where)
    with pytest.raises(pickle.UnpicklingError):  # any library's torch.load in this process
        torch.load(path, weights_only=True)
    readers = [load_checkpoint_file, check_checkpoint_file, read_runner_checkpoint,
               read_checkpoint, inspect_checkpoint,
               lambda p: load_pretrained(SwinTransformerV2(arch='tiny'), p)]
    for read in readers:
        with pytest.raises(CheckpointFileError, match='refused') as err:
            read(path)
        assert path in str(err.value) and 'getattr' in str(err.value)


def test_the_getattr_stand_in_gives_history_buffer_statistics_only():
    assert history_buffer_method(HistoryBuffer, 'mean') is HistoryBuffer.mean
    for owner, name in ((getattr, '__self__'), (HistoryBuffer, '__init__'),
                        (HistoryBuffer, '__class__'), (HistoryBuffer, 'update'), ({}, 'get'),
                        (HistoryBuffer(), 'mean'), (HistoryBuffer, None)):
        with pytest.raises(pickle.UnpicklingError, match='refused attribute lookup'):
            history_buffer_method(owner, name)
    entries = torch.serialization.get_safe_globals()
    assert getattr not in entries and exec not in entries and eval not in entries
    assert (history_buffer_method, 'builtins.getattr') in entries


def history_buffer_with_methods(p) -> None:
    """A HistoryBuffer whose own ``_statistics_methods`` table (which ``statistics`` calls)
    maps 'mean' to ``Counter``."""
    p.call(lambda: p.global_('mmengine.logging.history_buffer', 'HistoryBuffer'))
    p.raw(pickle.EMPTY_DICT).str_('_statistics_methods').raw(pickle.EMPTY_DICT).str_('mean')
    p.global_('collections', 'Counter').raw(pickle.SETITEM + pickle.SETITEM + pickle.BUILD)


def build_gadgets():
    """Objects made from callables torch allows by default or swinv2_mm adds, placed where
    later code calls them: ``copy.deepcopy`` and ``pickle.dumps`` call an instance's
    ``__deepcopy__``/``__reduce_ex__``, and an instance attribute shadows a method."""
    def od(attribute, module, name):
        return lambda p: ordered_dict_with(p, attribute, lambda: p.global_(module, name))
    return {'reduce_ex': od('__reduce_ex__', 'collections', 'Counter'),
            'deepcopy': od('__deepcopy__', '_codecs', 'encode'),
            'shadowed get': od('get', 'collections', 'Counter'),
            'history methods': history_buffer_with_methods}


@pytest.mark.parametrize('gadget', sorted(build_gadgets()))
def test_objects_that_shadow_methods_are_refused_naming_the_entry(tmp_path, marker, gadget):
    path = write_torch_file(tmp_path / 'gadget.pth',
                            checkpoint_pickle(build_gadgets()[gadget], 'message_hub'))
    torch.load(path, weights_only=True)  # torch's unpickler alone lets these through
    for read in (load_checkpoint_file, read_runner_checkpoint, read_checkpoint):
        with pytest.raises(CheckpointFileError, match=r"holds .* at checkpoint\['message_hub'\]"):
            read(path)


def test_an_allow_list_widened_by_another_library_still_gets_no_code_run(tmp_path, marker):
    """Even with bare ``getattr`` put back on torch's allow-list by some other import, the
    readers refuse the file before anything deep-copies it (a function object is not data)."""
    path = getattr_gadget_file(tmp_path, marker, 'optimizer')
    torch.serialization.clear_safe_globals()
    try:
        torch.serialization.add_safe_globals([getattr])
        with pytest.raises(CheckpointFileError, match='OrderedDict with the attribute '
                                                      '__reduce_ex__'):
            read_runner_checkpoint(path)
    finally:
        torch.serialization.clear_safe_globals()
        allow_mmengine_checkpoints()


def exec_gadget(marker) -> Reduce:
    """The getattr-chain gadget as an object ``torch.save`` writes (needs bare getattr)."""
    builtins_module = Reduce(getattr, (getattr, '__self__'))
    exec_ = Reduce(getattr, (builtins_module, 'exec'))
    getter = Reduce(getattr, ({4: (exec_, (marker_code(marker),))}, 'get'))
    return Reduce(OrderedDict, (), {'__reduce_ex__': getter})


def test_gadgets_hidden_where_the_walk_cannot_see_are_refused(tmp_path, marker):
    """Found by a review: a numpy dtype's metadata, a parameter's backward hooks and tensor
    subclasses hold objects outside ``vars()``; with bare getattr allowed by another library,
    the exec gadget hidden in dtype metadata ran when mmengine's MessageHub deep-copied it."""
    from mmengine.logging import MessageHub
    hidden = {
        'dtype metadata': np.dtype('f4', metadata={'x': exec_gadget(marker)}),
        'backward hooks': Reduce(torch._utils._rebuild_parameter_with_state,
                                 (torch.ones(2), True, OrderedDict({0: Counter}), {})),
    }
    torch.serialization.clear_safe_globals()
    try:  # the numpy and mmengine types, and bare getattr instead of the stand-in
        torch.serialization.add_safe_globals(
            [g for g in mmengine_checkpoint_globals() if not isinstance(g, tuple)] + [getattr])
        for name, value in hidden.items():
            path = str(tmp_path / f'{name}.pth')
            hub = dict(log_scalars={}, runtime_info={'x': value}, resumed_keys={'x': True})
            torch.save({'meta': {'iter': 1}, 'message_hub': hub}, path)
            loaded = torch.load(path, weights_only=True)  # what would have been used
            if name == 'dtype metadata':
                MessageHub('probe').load_state_dict(loaded['message_hub'])
                assert marker.exists()  # the gadget is real
                marker.unlink()
            with pytest.raises(CheckpointFileError, match="at checkpoint\\['message_hub'\\]"):
                read_runner_checkpoint(path)
    finally:
        torch.serialization.clear_safe_globals()
        allow_mmengine_checkpoints()


def test_types_other_imports_allow_are_refused_before_unpickling(tmp_path):
    """``traceback.FrameSummary`` (on torch's allow-list once its compiler is imported) reads
    the file it names while it is unpickled: a named pipe would hang the load forever."""
    fifo = str(tmp_path / 'fifo')
    os.mkfifo(fifo)
    path = str(tmp_path / 'frame.pth')
    torch.save({'meta': Reduce(traceback.FrameSummary, (fifo, 1, 'x'))}, path)
    signal.alarm(60)  # a hang fails the test instead of the suite
    try:
        with torch.serialization.safe_globals([traceback.FrameSummary]):
            with pytest.raises(CheckpointFileError, match='holds traceback.FrameSummary'):
                read_runner_checkpoint(path)
    finally:
        signal.alarm(0)


def test_numpy_data_of_every_number_type_loads(tmp_path):
    """What hooks log and random states hold: numpy numbers, bools, strings of any width."""
    values = {'state': np.random.get_state(), 'flags': np.array([True, False]),
              'palette': np.arange(6, dtype=np.uint8).reshape(2, 3), 'count': np.int32(7),
              'half': np.float16(0.5), 'names': np.array(['cat', 'dog'])}
    path = str(tmp_path / 'numpy.pth')
    torch.save({'meta': values}, path)
    loaded = read_runner_checkpoint(path)['meta']
    assert loaded['state'][0] == 'MT19937' and (loaded['state'][1] == values['state'][1]).all()
    assert loaded['palette'].dtype == np.uint8 and loaded['names'].tolist() == ['cat', 'dog']


def test_meta_config_is_dropped_before_the_runner_sees_it(tmp_path, marker):
    path = str(tmp_path / 'meta_config.pth')
    torch.save({'state_dict': {}, 'meta': {'iter': 1, 'config': marker_code(marker),
                                           'cfg': 'kept = 1'}}, path)
    checkpoint = read_runner_checkpoint(path)
    assert 'config' not in checkpoint['meta'] and checkpoint['meta']['cfg'] == 'kept = 1'


@pytest.fixture
def served(tmp_path, monkeypatch):
    """An HTTP server on the loopback serving ``tmp_path``; torch.hub's cache in tmp_path."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def test_urls_are_read_weights_only(tmp_path, marker, served):
    """mmengine reads URLs through torch.hub, which unpickles in full: swinv2_mm's readers
    force the weights-only unpickler there, and mmengine's own loader under the runner's
    weights-only switch is refused too."""
    from mmengine.runner.checkpoint import CheckpointLoader
    name = os.path.basename(getattr_gadget_file(tmp_path, marker, 'message_hub'))
    with pytest.raises(CheckpointFileError, match='refused') as err:
        read_checkpoint(f'{served}/{name}')
    assert name in str(err.value)
    os.makedirs(tmp_path / 'fresh')
    (tmp_path / 'fresh' / name).write_bytes((tmp_path / name).read_bytes())
    with weights_only_loading(), pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(f'{served}/fresh/{name}', map_location='cpu')
    assert 'TORCH_FORCE_WEIGHTS_ONLY_LOAD' not in os.environ  # the switch is put back
    genuine = tmp_path / 'genuine.pth'
    torch.save({'state_dict': {'w': torch.arange(3.)}}, genuine)
    assert read_checkpoint(f'{served}/genuine.pth')['state_dict']['w'].tolist() == [0, 1, 2]


# --- through mmengine's runner, as --resume, auto-resume, restarts, load_from and init_cfg do


class ToyModel(BaseModel):
    """A model mmengine's runner trains: one linear layer on 2-vectors."""

    def __init__(self, width: int = 3, init_cfg=None):
        super().__init__()
        self.toy = BaseModule(init_cfg)
        self.toy.linear = nn.Linear(2, width)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.toy.linear(torch.stack(inputs))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def toy_runner(work_dir, width: int = 3, init_cfg=None, max_iters: int = 2, **cfg):
    data = [dict(inputs=torch.randn(2)) for _ in range(8)]
    return SafeCheckpointRunner(
        model=ToyModel(width, init_cfg), work_dir=str(work_dir), experiment_name=f'toy_{id(data)}',
        train_dataloader=dict(dataset=data, batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        default_scope='mmengine', **cfg)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A work dir with a genuine runner checkpoint, ``iter_2.pth``."""
    work = tmp_path_factory.mktemp('trained')
    toy_runner(work).train()
    return work


@pytest.mark.parametrize('how', ['resume path', 'auto-resume', 'load_from'])
def test_runner_refuses_crafted_checkpoints_on_every_path(tmp_path, marker, trained, how):
    path = getattr_gadget_file(tmp_path, marker, 'message_hub')
    if how == 'auto-resume':  # also what a torchrun-restarted worker does
        (tmp_path / 'last_checkpoint').write_text(path)
        runner = toy_runner(tmp_path, resume=True)
    else:
        runner = toy_runner(tmp_path, load_from=path, resume=how == 'resume path')
    with pytest.raises((ValueError, RuntimeError), match='refused') as err:  # or: no readable one
        runner.train()
    assert path in str(err.value) and 'refused attribute lookup: getattr(getattr' in str(err.value)


def test_resume_of_a_genuine_checkpoint_with_meta_config_runs_nothing(tmp_path, marker, trained):
    checkpoint = torch.load(trained / 'iter_2.pth', weights_only=True)
    checkpoint['meta']['config'] = marker_code(marker)  # mmengine would Config.fromstring it
    torch.save(checkpoint, tmp_path / 'iter_2.pth')
    runner = toy_runner(tmp_path, load_from=str(tmp_path / 'iter_2.pth'), resume=True,
                        max_iters=3)
    runner.train()
    assert runner.iter == 3


def test_a_pretrained_url_of_any_module_is_read_weights_only(tmp_path, marker, served):
    """mmengine's PretrainedInit (a neck's or head's init_cfg) reads URLs through torch.hub;
    under swinv2_mm's runner that read is weights-only."""
    name = os.path.basename(getattr_gadget_file(tmp_path, marker, 'state_dict'))
    runner = toy_runner(tmp_path / 'work',
                        init_cfg=dict(type='Pretrained', checkpoint=f'{served}/{name}'))
    with pytest.raises(pickle.UnpicklingError):
        runner.train()


def test_checkpoints_of_another_shape_are_refused_naming_the_weight(tmp_path, trained):
    runner = toy_runner(tmp_path / 'a', width=5, load_from=str(trained / 'iter_2.pth'))
    with pytest.raises(ValueError, match=r'toy\.linear\.weight is \(3, 2\) in the checkpoint '
                                         r'but \(5, 2\) in the model'):
        runner.load_or_resume()
    runner = toy_runner(tmp_path / 'b', width=5, load_from=str(trained / 'iter_2.pth'),
                        cfg=dict(load_from_ignore=[r'^toy\.linear\.']))
    runner.load_or_resume()  # fine-tuning with a new head, on purpose
    unrelated = tmp_path / 'unrelated.pth'
    torch.save({'state_dict': {'backbone.w': torch.ones(2)}}, unrelated)
    runner = toy_runner(tmp_path / 'c', load_from=str(unrelated))
    with pytest.raises(ValueError, match="holds none of this model's weights"):
        runner.load_or_resume()
