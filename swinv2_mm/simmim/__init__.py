"""SimMIM pre-training of SwinV2 inside mmpretrain: the masked backbone, the paper's
normalised-target loss and a hook that draws reconstructions.

mmpretrain provides the algorithm (``SimMIM``), the decoder (``SimMIMLinearDecoder``), the
head (``SimMIMHead``) and the mask transform (``SimMIMMaskGenerator``); these classes fill
the gaps and are registered in mmengine's root registries, which mmpretrain's fall back to.
"""
from .backbone import SimMIMSwinTransformerV2
from .pictures import SimMIMPicturesHook
from .target import NormalizedTargetL1Loss, local_mean_std, local_normalized_target

__all__ = ['NormalizedTargetL1Loss', 'SimMIMPicturesHook', 'SimMIMSwinTransformerV2',
           'local_mean_std', 'local_normalized_target']
