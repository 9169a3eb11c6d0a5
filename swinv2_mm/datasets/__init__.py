"""Generated datasets for quick end-to-end training checks (imported on purpose only)."""
from .shapes_coco import (CLASSES, ShapesCocoDataset, ShapesCocoMetric, default_data_root,
                          generate_shapes_coco)

__all__ = ['CLASSES', 'ShapesCocoDataset', 'ShapesCocoMetric', 'default_data_root',
           'generate_shapes_coco']
