"""What Inspect AI's entry point (``medfm_robust`` in the ``inspect_ai`` group) loads: our tasks
(``medfm_robust/vqa``, ``/caption``, ``/report``, ``/grounding``) and the ``medfm`` model provider."""

from .inspect_models import MedFMModelAPI
from .inspect_tasks import caption, grounding, report, vqa

__all__ = ["MedFMModelAPI", "caption", "grounding", "report", "vqa"]
