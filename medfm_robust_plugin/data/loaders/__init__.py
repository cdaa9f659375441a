"""Dataset loaders for the public datasets of the benchmark, and generic ones for your own data.

Each loader reads a dataset in its released layout from a data root (``--data-root DIR`` or
``$MEDFM_ROBUST_DATA/<name>``), some also from the Hugging Face hub (``hub_id=``), and returns a
``LoadResult``: the samples, and every item it had to skip with the reason. docs/datasets.md says
where to obtain each dataset and which layout each loader expects.
"""

from __future__ import annotations

from ...hookspecs import hookimpl
from .base import DatasetLayoutError, FileDataset
from .brain_mri import BrainTumorMRI
from .captions import IUXray, ROCOv2
from .grounding import MeCoVQAGroundingPlus
from .hub import HubDataset
from .monuseg import MoNuSeg
from .omnimedvqa import OmniMedVQA
from .segmentation import BUSI, ISIC2016, REFUGE, ImageFolder, KvasirSEG
from .tables import QATable, VLMEvalTSV
from .volumes import FLARE22

LOADERS: tuple[type[FileDataset], ...] = (
    OmniMedVQA,
    ROCOv2,
    IUXray,
    MeCoVQAGroundingPlus,
    ISIC2016,
    BrainTumorMRI,
    BUSI,
    KvasirSEG,
    MoNuSeg,
    REFUGE,
    FLARE22,
    ImageFolder,
    QATable,
    VLMEvalTSV,
    HubDataset,
)

__all__ = ["LOADERS", "DatasetLayoutError", "FileDataset"]


@hookimpl
def register_datasets(register):
    for loader in LOADERS:
        register(loader())
