"""InstaBoost where its package is installed: the HTC++ recipe's copy-paste augmentation, optional.

mmdet's ``InstaBoost`` transform needs the ``instaboostfast`` package and refuses to build
without it. ``OptionalInstaBoost`` (registered in mmdet's TRANSFORMS) applies it when the
package imports and otherwise passes its input through, saying once that it is off and how
to turn it on (``pip install instaboostfast``).
"""
import functools
import importlib

from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import InstaBoost
from mmdet.registry import TRANSFORMS
from mmengine.logging import print_log


@functools.lru_cache(maxsize=None)
def instaboost_available() -> bool:
    """Whether ``instaboostfast`` imports; when not, logs (once per process) that InstaBoost
    is off."""
    try:
        importlib.import_module('instaboostfast')
    except ImportError:
        print_log('OptionalInstaBoost: the instaboostfast package is not installed, so '
                  'InstaBoost is off and images pass through unchanged; '
                  '`pip install instaboostfast` turns it on', logger='current')
        return False
    return True


@TRANSFORMS.register_module()
class OptionalInstaBoost(BaseTransform):
    """mmdet's ``InstaBoost`` (same arguments, same place in the pipeline: after
    ``LoadImageFromFile``, before ``LoadAnnotations``) when ``instaboostfast`` is installed,
    else the identity.

    InstaBoost moves and copies instances in the image and their boxes and polygons; a
    semantic map loaded afterwards (HTC's ``with_seg``) still shows them where they were.
    """

    def __init__(self, **kwargs) -> None:
        self.boost = InstaBoost(**kwargs) if instaboost_available() else None

    def transform(self, results: dict) -> dict:
        """The results boosted by InstaBoost, or unchanged when it is off."""
        return results if self.boost is None else self.boost.transform(results)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.boost!r})'
