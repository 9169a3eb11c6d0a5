# HTC++, SwinV2-G (3B) backbone, COCO, following the paper: 1536 px large-scale jitter,
# window 32 (at 1536 px it covers 128, 256, 512 and 1024 px of the input in stages 0-3, whose
# maps are 384, 192, 96 and 48 tokens a side: 12x12, 6x6, 3x3 and, padded, 2x2 windows; at the
# 1100 px test size stage 3's window shrinks to its map's short side, e.g. 26 x 32),
# activation checkpointing, ZeRO-1 optimizer sharding on more than one process. The paper's
# 63.1 / 54.4 (test-dev) also needed an Objects365 detection stage before COCO and
# multi-scale testing, which these configs do not do (README: HTC++).
# No SwinV2-G weights are public: point init_cfg at your own (any layout swinv2_mm reads) with
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
#   model.backbone.pretrained_window_sizes=[W,W,W,W/2]
_base_ = './_base_/htc_swinv2_coco.py'

model = dict(
    backbone=dict(
        arch='giant',
        pretrained_window_sizes=0,
        drop_path_rate=0.3,
        with_cp=True,
        attn_chunk_size=16),  # sequential attention: 16 windows at a time
    neck=dict(in_channels=[512, 1024, 2048, 4096]))

# ZeRO-1: on more than one process each rank keeps 1/N of AdamW's state (mmengine's
# ZeroRedundancyOptimizer); a single process trains with the plain optimizer
# FSDP (ZeRO-3: parameters and gradients sharded too, one unit per SwinV2 block) instead:
#   --cfg-options model_wrapper_cfg.type=MMFullyShard (see configs/_base_/fsdp.py; the
#   tools then replace this constructor by its base_constructor)
optim_wrapper = dict(constructor='ZeroWhenDistributedConstructor',
                     base_constructor='DefaultOptimWrapperConstructor')
