"""Generated datasets for end-to-end training checks, imported on purpose by demo configs:
``swinv2_mm.datasets.shapes_coco`` (mmdet, COCO layout) and ``swinv2_mm.datasets.shapes_ade``
(mmseg, ADE20K layout). This package itself imports no toolbox."""
