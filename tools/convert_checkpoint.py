"""Converts a SwinV2 checkpoint (official, timm, mmpretrain, HF, swinv2_mm) to swinv2_mm's layout.

    python tools/convert_checkpoint.py SRC DST      # DST ends in .pth or .safetensors
"""
import argparse

from swinv2_mm.checkpoint import convert_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='checkpoint file or URL in any known SwinV2 layout')
    parser.add_argument('dst', help='output file: .safetensors, or anything else for a .pth dict')
    args = parser.parse_args()
    sd = convert_file(args.src, args.dst)
    print(f'wrote {len(sd)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
