"""tools/benchmark_amp.py times the demo steps it names, in both precisions."""
from tests.helpers import load_tool


def test_times_train_and_eval_steps_in_both_precisions(tmp_path, monkeypatch):
    monkeypatch.setenv('SWINV2_MM_DATA', str(tmp_path))  # the demo data, generated here
    results = load_tool('benchmark_amp').main(['--demos', 'video_swinv2_shapes_demo',
                                               '--repeats', '1'])
    steps = results['video_swinv2_shapes_demo']
    assert set(steps) == {'train fp32', 'train amp', 'eval fp32', 'eval amp'}
    assert all(seconds > 0 for seconds in steps.values())
