"""Checkpoint interop (official, timm, mmpretrain, HF transformers and swinv2_mm layouts) and
safe checkpoint file I/O."""
from .convert import convert_state_dict, detect_layout, to_mmpretrain, unwrap_state_dict
from .files import CheckpointFileError, allow_mmengine_checkpoints, load_checkpoint_file
from .loading import check_fits, convert_file, load_pretrained, read_checkpoint

__all__ = ['CheckpointFileError', 'allow_mmengine_checkpoints', 'check_fits', 'convert_file',
           'convert_state_dict', 'detect_layout', 'load_checkpoint_file', 'load_pretrained',
           'read_checkpoint', 'to_mmpretrain', 'unwrap_state_dict']
