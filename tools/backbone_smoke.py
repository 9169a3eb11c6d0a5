"""Builds SwinV2 through mmdet's registry, loads window-8 weights at window 16, runs it."""
import argparse

from swinv2_mm.smoke import run_backbone_smoke


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--arch', default='tiny')
    parser.add_argument('--scope', default='mmdet', help='mmdet, mmseg or mmaction')
    args = parser.parse_args()
    records = run_backbone_smoke(args.arch, scope=args.scope)
    for r in records:
        print(f"input {r['size'][0]}x{r['size'][1]}: {r['seconds']:.2f} s, finite={r['finite']}, "
              f"features {r['shapes']}")
    if not all(r['finite'] for r in records):
        raise SystemExit('non-finite features')


if __name__ == '__main__':
    main()
