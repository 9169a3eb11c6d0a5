"""Supplies ``mmaction.models.localizers.drn`` where the installed mmaction2 lacks it.

mmaction2 1.2.0 as published on PyPI (wheel and sdist) omits the folder
``mmaction/models/localizers/drn`` although ``mmaction/models/localizers/__init__.py``
imports ``DRN`` from it, so ``import mmaction.models`` fails. This module installs an
import hook, only when that folder is missing, that provides the two missing modules
with a ``DRN`` placeholder which raises a clear error if someone builds it. Nothing in
site-packages is modified, and a complete mmaction2 is left alone.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types

DRN_PACKAGE = 'mmaction.models.localizers.drn'
DRN_MODULE = DRN_PACKAGE + '.drn'


class _DRNUnavailable:
    """Placeholder for mmaction2's DRN localizer, which the published 1.2.0 lacks."""

    def __init__(self, *args, **kwargs):
        raise ImportError('DRN is not available: the published mmaction2 1.2.0 lacks '
                          'mmaction/models/localizers/drn; install mmaction2 from source '
                          'to use the DRN localizer')


class _DRNShimFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and creates exactly the two missing modules, nothing else."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in (DRN_PACKAGE, DRN_MODULE):
            return importlib.machinery.ModuleSpec(fullname, self,
                                                  is_package=fullname == DRN_PACKAGE)
        return None

    def create_module(self, spec):
        return types.ModuleType(spec.name)

    def exec_module(self, module):
        if module.__name__ == DRN_PACKAGE:
            module.__path__ = []
            return
        _DRNUnavailable.__module__ = DRN_MODULE
        module.DRN = _DRNUnavailable
        module.__all__ = ['DRN']
        from mmaction.registry import MODELS
        if 'DRN' not in MODELS.module_dict:
            MODELS.register_module(name='DRN', module=_DRNUnavailable)


def drn_is_missing() -> bool:
    """True when mmaction2 is installed without its localizers/drn folder."""
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    root = list(spec.submodule_search_locations)[0]
    localizers = os.path.join(root, 'models', 'localizers')
    return os.path.isdir(localizers) and not os.path.isdir(os.path.join(localizers, 'drn'))


def install_mmaction_drn_shim() -> bool:
    """Installs the import hook if needed; returns whether it is active."""
    if any(isinstance(f, _DRNShimFinder) for f in sys.meta_path):
        return True
    if not drn_is_missing():
        return False
    sys.meta_path.insert(0, _DRNShimFinder())
    return True
