"""Task metrics (VQA, captioning and reports, grounding, segmentation) and robustness summaries."""

from .base import Metric, MetricError, get_metric

__all__ = ["Metric", "MetricError", "get_metric"]
