"""mmaction2 heads whose loss, top-k accuracy and scores are float32 islands under autocast.

mmaction2's ``BaseHead`` turns class scores into numpy for its accuracy (numpy has no
bfloat16) and its metrics do the same with the predicted scores. Registered in mmaction2's
MODELS as ``Amp<mmaction2 name>``; without autocast each behaves exactly as its mmaction2 class.
"""
from mmaction.models.heads import I3DHead
from mmaction.registry import MODELS

from .islands import amp_variants, float32_methods


@MODELS.register_module()
@float32_methods('loss_by_feat', 'predict_by_feat')
class AmpI3DHead(I3DHead):
    """I3DHead with its loss, accuracy and predicted scores in float32."""


AMP_VARIANTS = amp_variants(AmpI3DHead)
