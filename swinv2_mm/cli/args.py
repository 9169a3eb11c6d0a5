"""The command-line flags that tools/train.py and tools/test.py share, and the number checks
of the other tools' flags."""
import argparse

from mmengine.config import DictAction


def number_type(kind, minimum, strict: bool = False):
    """argparse ``type`` of a number of ``kind`` (int or float) that is >= ``minimum`` (>
    with ``strict``); anything else is refused naming the value and the bound."""
    noun = 'an integer' if kind is int else 'a number'

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not {noun}') from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f'{value} is not {">" if strict else ">="} '
                                             f'{minimum}')
        return value
    return parse


def add_common_args(parser) -> None:
    """The flags mmdet users know, shared by tools/train.py and tools/test.py."""
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value (e.g. '
                             'model.backbone.window_size=24)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (torchrun uses pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
