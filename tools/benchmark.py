"""swinv2_mm beside timm's and mmpretrain's SwinV2: same weights, agreement, speed, memory.

    python tools/benchmark.py [--cases tiny-256-w8 ...] [--repeats 5] [--json out.json]

See swinv2_mm/benchmark.py and docs/benchmarks.md.
"""
from swinv2_mm.benchmark import main

if __name__ == '__main__':
    main()
