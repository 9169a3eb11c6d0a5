"""Checkpoint interop: official, timm, mmpretrain, HF transformers and swinv2_mm layouts."""
from .convert import convert_state_dict, detect_layout, to_mmpretrain, unwrap_state_dict
from .loading import check_fits, convert_file, load_pretrained, read_checkpoint

__all__ = ['convert_state_dict', 'detect_layout', 'to_mmpretrain', 'unwrap_state_dict',
           'check_fits', 'convert_file', 'load_pretrained', 'read_checkpoint']
