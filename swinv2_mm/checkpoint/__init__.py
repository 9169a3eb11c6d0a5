"""Checkpoint interop (official, timm, mmpretrain, HF transformers and swinv2_mm layouts),
inspection and safe checkpoint file I/O."""
from .convert import (convert_state_dict, detect_layout, renamed_tensors, to_mmpretrain,
                      unwrap_state_dict)
from .files import CheckpointFileError, allow_mmengine_checkpoints, load_checkpoint_file
from .inspect import CheckpointInfo, inspect_checkpoint
from .loading import (CheckpointFitError, check_fits, convert_file, load_pretrained,
                      read_checkpoint)

__all__ = ['CheckpointFileError', 'CheckpointFitError', 'CheckpointInfo',
           'allow_mmengine_checkpoints', 'check_fits', 'convert_file', 'convert_state_dict',
           'detect_layout', 'inspect_checkpoint', 'load_checkpoint_file', 'load_pretrained',
           'read_checkpoint', 'renamed_tensors', 'to_mmpretrain', 'unwrap_state_dict']
