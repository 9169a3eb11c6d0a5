"""mmaction2 1.2.0 imports beside swinv2_mm although its wheel lacks localizers/drn."""
import subprocess
import sys

import pytest

import swinv2_mm  # noqa: F401  (installs the shim before mmaction.models is imported)
from swinv2_mm.compat.mmaction import drn_is_missing, install_mmaction_drn_shim

pytest.importorskip('mmaction')


def test_mmaction_models_import():
    import mmaction.models
    assert hasattr(mmaction.models, 'Recognizer3D')


def test_drn_placeholder_explains_itself():
    if not drn_is_missing():
        pytest.skip('this mmaction2 ships localizers/drn; no shim needed')
    from mmaction.models.localizers import DRN
    with pytest.raises(ImportError, match='published mmaction2 1.2.0 lacks'):
        DRN()


def test_shim_is_needed_and_only_active_when_needed():
    """Without swinv2_mm the published mmaction2 fails to import; with it, it works."""
    plain = subprocess.run([sys.executable, '-c', 'import mmaction.models'],
                           capture_output=True, text=True)
    if drn_is_missing():
        assert plain.returncode != 0 and 'mmaction.models.localizers.drn' in plain.stderr
        assert install_mmaction_drn_shim() is True
    else:
        assert plain.returncode == 0 and install_mmaction_drn_shim() is False
    shimmed = subprocess.run([sys.executable, '-c', 'import swinv2_mm, mmaction.models'],
                             capture_output=True, text=True)
    assert shimmed.returncode == 0, shimmed.stderr


def test_stack_imports_completely():
    code = 'import swinv2_mm, mmcv.ops, mmdet.models, mmseg.models, mmaction.models; print("ok")'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == 'ok', out.stderr[-2000:]
