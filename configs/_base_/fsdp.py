# FSDP (ZeRO-3) switch: parameters, gradients and optimizer state sharded over the processes
# with torch's FSDP2 fully_shard, one unit per SwinV2 block plus the root
# (swinv2_mm.engine.fsdp). Inherit it next to a config, e.g.
#   _base_ = ['./cascade_swinv2_g_coco.py', './_base_/fsdp.py']
# or pass --cfg-options model_wrapper_cfg.type=MMFullyShard to tools/train.py. Under it the
# tools use FSDPRunner (checkpoints hold the gathered, unsharded model and optimizer state) and
# replace a ZeroWhenDistributedConstructor (ZeRO-1) by its base constructor. A single process
# trains as without it; activation checkpointing (with_cp) and attn_chunk_size are kept.
model_wrapper_cfg = dict(type='MMFullyShard', shard_modules=('SwinV2Block',),
                         reshard_after_forward=True)
runner_type = 'FSDPRunner'
