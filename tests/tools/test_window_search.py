"""tools/window_search.py: windows x sizes on a tiny segmentation checkpoint, the log-CPB
normalisers it sets, agreement with tools/test.py, and the config rewriting for every toolbox."""
import contextlib
import io
import os
import re
import shlex

import pytest
import torch
from mmengine.config import Config

from swinv2_mm.cli import window_search as ws
from swinv2_mm.models import ConfigError
from tests.helpers import ROOT, build_in_scope, load_tool, randomize_, run_tool

DEMO = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_demo.py')
VIDEO_DEMO = os.path.join(ROOT, 'configs', 'demo', 'video_swinv2_shapes_demo.py')
TEST = os.path.join(ROOT, 'tools', 'test.py')
SUBSET = 4
DATA = ['test_dataloader.dataset.generate.num_train=2',
        f'test_dataloader.dataset.generate.num_val={SUBSET}']
TRAINED_NORMALISERS = [[8, 8], [8, 8], [8, 8], [6, 6]]  # 192 px: the last stage's map is 6x6


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """The segmentation demo's model with random non-trivial weights, saved as the runner
    saves (with the config it records)."""
    cfg = Config.fromfile(DEMO)
    model = randomize_(build_in_scope(cfg.model, 'mmseg'))
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    torch.save(dict(meta=dict(cfg=cfg.pretty_text), state_dict=model.state_dict()), path)
    return path


@contextlib.contextmanager
def data_folder(env):
    """The module's private generated-data folder for an in-process tool run."""
    old = os.environ.get('SWINV2_MM_DATA')
    os.environ['SWINV2_MM_DATA'] = env['SWINV2_MM_DATA']
    try:
        yield
    finally:
        if old is None:
            os.environ.pop('SWINV2_MM_DATA')
        else:
            os.environ['SWINV2_MM_DATA'] = old


@pytest.fixture(scope='module')
def search(checkpoint, env, tmp_path_factory):
    """Windows 8, 12 x sizes 192, 128 on the first samples; the result and what it printed."""
    work = tmp_path_factory.mktemp('search')
    out = io.StringIO()
    with data_folder(env), contextlib.redirect_stdout(out):
        result = load_tool('window_search').main([
            DEMO, checkpoint, '--windows', '8', '12', '--sizes', '192', '128',
            '--subset', str(SUBSET), '--work-dir', str(work), '--json', str(work / 'ws.json'),
            '--cfg-options', *DATA])
    return result, out.getvalue(), work


def test_one_row_per_window_and_size(search):
    result, printed, work = search
    assert sorted((r['window'], r['size']) for r in result['rows']) == [
        (8, 128), (8, 192), (12, 128), (12, 192)]
    assert [r['own'] for r in result['rows'] if (r['window'], r['size']) == (8, 192)] == [True]
    assert os.path.isfile(work / 'ws.json') and os.path.isfile(work / 'window_search.png')
    assert '| 12 | 128 | ' in printed


def test_every_model_keeps_the_training_normalisers(search):
    """The built backbones hold the normalisers of training, not 0, at every window."""
    result, printed, _ = search
    assert 'pretrained_window_sizes=[8,8,8,6]' in printed
    for row in result['rows']:
        assert row['pretrained_window_sizes'] == TRAINED_NORMALISERS
        assert row['window_sizes'] == [[row['window']] * 2] * 4


def test_own_row_and_best_line_match_tools_test(search, env, tmp_path):
    """tools/test.py gives the own row's mIoU unchanged, and the printed command gives the
    best row's."""
    result, printed, _ = search
    rows = {(r['window'], r['size']): r['metrics']['mIoU'] for r in result['rows']}
    own = run_tool([TEST, DEMO, result['checkpoint'], '--work-dir', str(tmp_path / 'own'),
                    '--cfg-options', *DATA, f'test_dataloader.dataset.indices={SUBSET}'],
                   env, str(tmp_path))
    assert float(re.findall(r'mIoU: ([\d.]+)', own.stdout + own.stderr)[-1]) == rows[8, 192]
    line = re.search(r'reproduce it with: (.*)', printed).group(1)
    command = shlex.split(line)
    assert command[:2] == ['python', 'tools/test.py'] and '--cfg-options' in command
    best = run_tool([TEST] + command[2:] + [f'test_dataloader.dataset.indices={SUBSET}',
                                            '--work-dir', str(tmp_path / 'best')], env, ROOT)
    best_row = (result['best']['window'], result['best']['size'])
    assert float(re.findall(r'mIoU: ([\d.]+)', best.stdout + best.stderr)[-1]) == rows[best_row]


def test_explicit_normalisers_leave_the_training_window_unchanged():
    """[8, 8, 8, 6] gives the model of pretrained_window_sizes=0 at 192 px bit for bit;
    the configured window as the last stage's normaliser would not."""
    backbone = dict(type='SwinTransformerV2', window_size=8, pretrained_window_sizes=0,
                    arch=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)))
    windows = ws.resolve_windows(backbone)
    normalisers = ws.training_normalisers(windows, (192, 192))
    assert normalisers == [tuple(n) for n in TRAINED_NORMALISERS]
    x = torch.randn(1, 3, 192, 192)
    outputs = []
    for pretrained in (0, [list(n) for n in normalisers], 8):
        model = build_in_scope(dict(backbone, pretrained_window_sizes=pretrained), 'mmseg')
        outputs.append(randomize_(model).eval()(x)[-1])
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


@pytest.mark.parametrize('pipeline, size, expected', [
    # detection demo (square) and the COCO recipe: the long-side limit stays proportionate
    ([dict(type='Resize', scale=(192, 192), keep_ratio=True)], 256,
     {'0.scale': (256, 256)}),
    ([dict(type='LoadImageFromFile'), dict(type='Resize', scale=(1333, 800), keep_ratio=True)],
     1100, {'1.scale': (1833, 1100)}),
    # ADE20K 640 -> 896, as in the SwinV2-G config's comment
    ([dict(type='mmseg.Resize', scale=(2560, 640), keep_ratio=True)], 896,
     {'0.scale': (3584, 896)}),
    # video: short-side resize and crop, S is the crop
    ([dict(type='Resize', scale=(-1, 366)), dict(type='CenterCrop', crop_size=320)], 384,
     {'0.scale': (-1, 439), '1.crop_size': 384}),
    ([dict(type='Resize', scale=(-1, 224)), dict(type='ThreeCrop', crop_size=224)], 224, {}),
])
def test_resized_pipeline(pipeline, size, expected):
    resized, changed = ws.resized_pipeline(pipeline, size)
    assert changed == expected
    for key, value in changed.items():
        index, field = key.split('.')
        assert resized[int(index)][field] == value


def test_video_windows_keep_the_temporal_axis_and_its_normaliser():
    cfg = Config.fromfile(VIDEO_DEMO, import_custom_modules=False)
    windows = ws.resolve_windows(cfg.model.backbone)
    assert ws.search_windows(12, windows.window_sizes) == [(4, 12, 12)] * 4
    normalisers = ws.training_normalisers(windows, (8, 64, 64))
    assert normalisers == [(4, 8, 8), (4, 8, 8), (4, 4, 4), (4, 2, 2)]
    assert ws.format_windows(normalisers) == '[(4,8,8),(4,8,8),(4,4,4),(4,2,2)]'


def test_recorded_windows_are_read_without_running_the_text():
    text = ("import os\nos.system('false')\nmodel = dict(type='X', backbone=dict("
            "type='SwinTransformerV2', window_size=12, pretrained_window_sizes=[8, 8, 8, 6]))\n")
    assert ws.recorded_backbone_windows(dict(meta=dict(cfg=text))) == dict(
        window_size=12, pretrained_window_sizes=[8, 8, 8, 6])


def test_bad_input_is_refused_before_any_model_is_built(tmp_path, capsys):
    tool = load_tool('window_search')
    with pytest.raises(SystemExit) as exit_info:
        tool.main([DEMO, 'missing.pth', '--windows', '0'])
    assert exit_info.value.code == 2 and '0 is not >= 1' in capsys.readouterr().err
    with pytest.raises(SystemExit, match='--sizes: the test pipeline'):
        tool.main([VIDEO_DEMO, 'missing.pth', '--windows', '8', '--sizes', '96',
                   '--work-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match="checkpoint: 'missing.pth' does not exist"):
        tool.main([DEMO, 'missing.pth', '--windows', '8', '--work-dir', str(tmp_path)])
    with pytest.raises(ConfigError, match='not a swinv2_mm SwinV2 backbone'):
        ws.backbone_class(Config(dict(model=dict(backbone=dict(type='mmdet.ResNet')))))
