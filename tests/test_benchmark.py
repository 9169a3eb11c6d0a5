"""The benchmark runs end to end on a small case: same weights, agreeing outputs, every
measurement present, a missing peer reported. (Speed itself is never asserted.)"""
import json
from unittest import mock

import pytest

from tests.helpers import load_tool

benchmark = load_tool('benchmark')


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp('bench') / 'out.json'
    benchmark.main(['--cases', 'tiny-64-w4', '--repeats', '1', '--json', str(path)])
    return json.loads(path.read_text())


def test_implementations_agree_and_are_measured(report):
    result, = report['results']
    assert set(result['impls']) == {'swinv2_mm', 'swinv2_mm-lean', 'swinv2_mm-explicit', 'timm',
                                    'mmpretrain'}
    assert max(result['agreement'].values()) < 1e-4 and not result['padding']
    assert result['flops']['train'] > 2 * result['flops']['eval'] > 0
    for entry in result['impls'].values():
        assert entry['eval_images_per_s'] > 0 and entry['train_images_per_s'] > 0
        assert 0 < entry['eval_utilisation'] and entry['saved_activation_bytes'] > 0
        assert entry['rss']['rss_peak'] >= entry['rss']['rss_before'] > 0
    impls = result['impls']
    assert impls['swinv2_mm-lean']['saved_activation_bytes'] < \
        0.5 * impls['swinv2_mm']['saved_activation_bytes']
    assert report['header']['matmul_flops_per_s'] > 0 and report['header']['threads'] >= 1


def test_a_missing_peer_is_reported_not_dropped(capsys):
    with mock.patch.object(benchmark, 'build_mmpretrain', side_effect=ImportError('absent')):
        results = benchmark.main(['--cases', 'tiny-64-w4', '--repeats', '1', '--no-rss',
                                  '--impls', 'swinv2_mm', 'mmpretrain'])
    assert results[0]['missing'] == ['mmpretrain']
    assert '| tiny-64-w4 | mmpretrain | not installed |' in capsys.readouterr().out


def test_padding_is_detected():
    assert benchmark.needs_padding(benchmark.CASES['tiny-800x1216-w8'])
    assert not benchmark.needs_padding(benchmark.CASES['tiny-256-w16'])
    assert benchmark.stage_windows(benchmark.CASES['tiny-256-w16']) == [16, 16, 16, 8]


def test_bf16_times_every_implementation_under_autocast():
    """--bf16 on the CPU: every implementation, the peak-RSS child included, runs under the
    same autocast and its outputs still agree (to bfloat16 precision)."""
    result, = benchmark.main(['--cases', 'tiny-64-w4', '--repeats', '1', '--bf16',
                              '--impls', 'swinv2_mm', 'timm'])
    assert set(result['impls']) == {'swinv2_mm', 'timm'}
    for entry in result['impls'].values():
        assert entry['train_s'] > 0 and entry['rss']['rss_peak'] > 0


def test_kernel_table_has_the_rules_pick_for_every_window(monkeypatch):
    monkeypatch.setattr(benchmark, 'KERNEL_WINDOWS', (4, 12))
    rows = benchmark.main(['--kernels', '--repeats', '1'])
    assert len(rows) == 2 * 2 * 2  # dtypes x modes x windows
    for row in rows:
        assert set(row['ms']) == set(benchmark.KERNELS) and row['rule'] in row['ms']
    picks = {(r['dtype'], r['mode'], r['window']): r['rule'] for r in rows}
    assert picks['float32', 'eval', 4] == 'sdpa'
    assert picks['float32', 'train', 4] == 'flash_with_bias'
    assert picks['bfloat16', 'train', 4] == 'explicit'
