"""The command-line flags that tools/train.py and tools/test.py share."""
from mmengine.config import DictAction


def add_common_args(parser) -> None:
    """The flags mmdet users know, shared by tools/train.py and tools/test.py."""
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value (e.g. '
                             'model.backbone.window_size=24)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (torchrun uses pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
