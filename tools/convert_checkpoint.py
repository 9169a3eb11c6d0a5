"""Converts a SwinV2 checkpoint (official, timm, mmpretrain, HF, swinv2_mm) to swinv2_mm's layout,
or tells what it holds.

    python tools/convert_checkpoint.py SRC DST      # DST ends in .pth or .safetensors
    python tools/convert_checkpoint.py SRC --inspect
"""
import argparse
import sys

from swinv2_mm.checkpoint import convert_file, inspect_checkpoint
from swinv2_mm.checkpoint.inspect import format_arch, window_config

DEFAULT_PATCH = {2: (4, 4), 3: (2, 4, 4)}  # the backbones' defaults


def format_count(n: int) -> str:
    """1060976996 -> '1.06B', 87900000 -> '87.9M'."""
    return f'{n / 1e9:.2f}B' if n >= 1e9 else f'{n / 1e6:.1f}M'


def config_lines(info) -> list:
    """The backbone arguments a config needs for this checkpoint."""
    lines = [f'arch={format_arch(info.arch)},']
    if info.in_channels != 3:
        lines.append(f'in_channels={info.in_channels},')
    if info.patch_size != DEFAULT_PATCH.get(info.num_axes):
        lines.append(f'patch_size={window_config([info.patch_size])[0]},')
    if info.pretrained_window_sizes is None:
        lines.append('# pretrained_window_sizes=[...],  unknown: the windows of pretraining')
    else:
        lines.append(f'pretrained_window_sizes={window_config(info.pretrained_window_sizes)},')
    return lines


def report(src: str, info) -> str:
    """What ``--inspect`` prints."""
    if info.window_sizes is None:
        windows = ['windows: none kept in the file (no relative_coords_table buffers), so the '
                   'pretraining windows are unknown; pretrained_window_sizes=0 assumes each '
                   "stage's own window"]
    else:
        windows = [f'windows per stage: {window_config(info.window_sizes)}',
                   f'pretrained windows per stage (log-CPB normaliser): '
                   f'{window_config(info.pretrained_window_sizes)}']
    return '\n'.join([
        f'checkpoint: {src}',
        f'layout: {info.layout} (left out when loading: {info.dropped})',
        f'arch: {format_arch(info.arch)}',
        f'input: in_channels={info.in_channels}, patch_size={info.patch_size}, '
        f'{info.num_axes}D weights',
        *windows,
        f'parameters: {format_count(info.num_params)} (backbone, {info.num_params:,})',
        'backbone config:',
        *('    ' + line for line in config_lines(info))])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='checkpoint file or URL in any known SwinV2 layout')
    parser.add_argument('dst', nargs='?',
                        help='output file: .safetensors, or anything else for a .pth dict')
    parser.add_argument('--inspect', action='store_true',
                        help='print the architecture, windows and size instead of converting')
    args = parser.parse_args()
    if not args.inspect and args.dst is None:
        parser.error('DST is required to convert; give it, or --inspect to describe SRC')
    try:
        if args.inspect:
            print(report(args.src, inspect_checkpoint(args.src)))
        else:
            sd = convert_file(args.src, args.dst)
            print(f'wrote {len(sd)} tensors to {args.dst}')
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
