"""Installs swinv2_mm; the pinned runtime stack is installed by tools/install.sh."""
from setuptools import find_packages, setup

setup(
    name='swinv2_mm',
    version='0.1.0',
    description='Swin Transformer V2 backbones for MMDetection, MMSegmentation and MMAction2',
    long_description=open('README.md').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['swinv2_mm', 'swinv2_mm.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.4', 'mmengine>=0.10'],  # torch.compiler.is_compiling
    extras_require={'safetensors': ['safetensors']},
    license='Apache-2.0',
)
