"""mmdet heads whose RoIAlign, box decoding, NMS and losses are float32 islands under autocast.

Registered in mmdet's MODELS as ``Amp<mmdet name>``; the shipped detection configs name them,
so ``--amp`` (bfloat16 or float16) trains and tests with the convolutions and linear layers of
every head in low precision. Without autocast each behaves exactly as its mmdet class.
"""
from mmdet.models.dense_heads import RPNHead
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead, Shared2FCBBoxHead
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS

from .islands import amp_variants, float32_methods

BBOX_HEAD_ISLANDS = ('loss_and_target', 'predict_by_feat', 'refine_bboxes', 'regress_by_class')
MASK_HEAD_ISLANDS = ('loss_and_target', 'predict_by_feat')


@MODELS.register_module()
@float32_methods('loss_by_feat', 'predict_by_feat')
class AmpRPNHead(RPNHead):
    """RPNHead with its loss, box decoding and NMS (mmcv, float32 kernels) in float32."""


@MODELS.register_module()
@float32_methods('forward')
class AmpSingleRoIExtractor(SingleRoIExtractor):
    """SingleRoIExtractor whose RoIAlign (mmcv: float32 on the CPU, no bfloat16 on CUDA) and
    output are float32; the head after it casts back to the autocast dtype."""


@MODELS.register_module()
@float32_methods(*BBOX_HEAD_ISLANDS)
class AmpConvFCBBoxHead(ConvFCBBoxHead):
    """ConvFCBBoxHead with its loss, box decoding, refinement and NMS in float32."""


@MODELS.register_module()
@float32_methods(*BBOX_HEAD_ISLANDS)
class AmpShared2FCBBoxHead(Shared2FCBBoxHead):
    """Shared2FCBBoxHead with its loss, box decoding, refinement and NMS in float32."""


@MODELS.register_module()
@float32_methods(*MASK_HEAD_ISLANDS)
class AmpFCNMaskHead(FCNMaskHead):
    """FCNMaskHead with its loss and mask pasting in float32."""


AMP_VARIANTS = amp_variants(AmpRPNHead, AmpSingleRoIExtractor, AmpConvFCBBoxHead,
                            AmpShared2FCBBoxHead, AmpFCNMaskHead)
