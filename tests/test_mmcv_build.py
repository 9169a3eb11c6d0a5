"""tools/install.sh's mmcv build decision, on simulated machines (no build is run): CPU
machines build as before, GPU machines build CUDA ops for their architectures under their own
cache key, and a missing or mismatched nvcc stops before building with what to install."""
import os

import pytest

from tests.helpers import load_tool

build = load_tool('mmcv_build')

H200 = ('NVIDIA H200', (9, 0))
A100 = ('NVIDIA A100-SXM4-80GB', (8, 0))


def machine(gpus=(), torch_cuda='12.8', nvcc='/usr/local/cuda/bin/nvcc', release='12.8', cpus=16):
    return build.Machine('2.14.1', torch_cuda, tuple(gpus), nvcc if gpus else None,
                         release if gpus else None, cpus)


def test_a_cpu_machine_builds_cpu_ops_under_the_existing_cache_key():
    plan = build.plan(machine(cpus=2), {})
    assert plan == dict(MMCV_TARGET='cpu', MMCV_CACHE_KEY='mmcv-2.1.0-torch-2.14.1',
                        FORCE_CUDA='0', TORCH_CUDA_ARCH_LIST='', MAX_JOBS='2')


def test_a_gpu_machine_builds_cuda_ops_for_its_architectures_with_every_core():
    plan = build.plan(machine([H200, A100, H200]), {})
    assert plan['MMCV_TARGET'] == 'cuda' and plan['FORCE_CUDA'] == '1'
    assert plan['TORCH_CUDA_ARCH_LIST'] == '8.0;9.0' and plan['MAX_JOBS'] == '16'
    assert plan['MMCV_CACHE_KEY'] == 'mmcv-2.1.0-torch-2.14.1-cu128-sm80_90'
    assert plan['MMCV_CACHE_KEY'] != build.plan(machine(), {})['MMCV_CACHE_KEY']


def test_user_overrides_are_honoured():
    env = dict(TORCH_CUDA_ARCH_LIST='9.0+PTX', MAX_JOBS='6')
    plan = build.plan(machine([H200]), env)
    assert (plan['TORCH_CUDA_ARCH_LIST'], plan['MAX_JOBS']) == ('9.0+PTX', '6')
    assert plan['MMCV_CACHE_KEY'].endswith('-sm90_ptx')
    cpu = build.plan(machine([H200], nvcc=None), dict(SWINV2_MM_MMCV_CPU='1'))
    assert cpu['MMCV_TARGET'] == 'cpu' and cpu['FORCE_CUDA'] == '0'


def test_missing_nvcc_stops_with_what_to_install():
    with pytest.raises(build.BuildPlanError, match=r'NVIDIA H200 \(compute capability 9.0\).*'
                       r'CUDA toolkit 12.8.*cuda-toolkit-12-8.*CUDA_HOME.*SWINV2_MM_MMCV_CPU=1'):
        build.plan(machine([H200], nvcc=None), {})


def test_an_nvcc_of_another_major_version_stops_too():
    mismatch = 'is CUDA 11.8, but torch 2.14.1 was built with CUDA 12.8'
    with pytest.raises(build.BuildPlanError, match=mismatch):
        build.plan(machine([H200], release='11.8'), {})
    assert build.plan(machine([H200], release='12.6'), {})['MMCV_TARGET'] == 'cuda'


def test_nvcc_is_found_where_torch_looks(tmp_path):
    nvcc = tmp_path / 'cuda' / 'bin' / 'nvcc'
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text('#!/bin/sh\necho "Cuda compilation tools, release 12.8, V12.8.93"\n')
    nvcc.chmod(0o755)
    assert build.find_nvcc(dict(CUDA_HOME=str(tmp_path / 'cuda'), PATH='')) == str(nvcc)
    assert build.find_nvcc(dict(PATH=str(nvcc.parent))) == str(nvcc)
    assert build.nvcc_release(str(nvcc)) == '12.8'


def test_this_machine_and_its_installed_mmcv():
    """Here (no GPU): the CPU plan, and the installed CPU-only mmcv fits it but would not fit
    a GPU machine."""
    here = build.detect(dict(os.environ))
    assert build.plan(here, {})['MMCV_TARGET'] == 'cpu'
    assert build.installed_fits('cpu') and not build.installed_fits('cuda')
