"""The baselines' clean scores on the embedded Mini suite, as docs/segmenters.md states them.

    python docs/baseline_numbers.py          # prints the paragraph
    python docs/baseline_numbers.py --write  # and puts it into docs/segmenters.md

tests/test_docs.py reruns this script and checks that the page says what it prints, so the numbers
on the page are the numbers the code gives. Clean items only (no corruption), every sample of the
Mini cards, through the runner and the cards' own metrics.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

PAGE = Path(__file__).with_name("segmenters.md")
BEGIN, END = "<!-- baseline-numbers: begin -->", "<!-- baseline-numbers: end -->"


def clean_scores(task: str, model, metric_name: str) -> dict[str, float]:
    """The card's ``metric_name`` on the clean items, per modality and over all ("all"): the
    images, prompts and boxes the runner gives a model (``Run._predict``), scored by the metric."""
    import numpy as np

    from medfm_robust_plugin.metrics.base import get_metric
    from medfm_robust_plugin.tasks import get_task
    from medfm_robust_plugin.views import CorruptedViews

    card, metric, views = get_task(task), get_metric(metric_name), CorruptedViews()
    states: dict[str, list] = defaultdict(list)
    for sample in card.load().samples:
        view = views.get(sample)
        if card.kind == "segmentation":
            box = np.asarray([sample.box], dtype=np.float32)
            prediction = np.asarray(model.segment(np.asarray(view.image), boxes=box)[0], bool)
        else:
            image = views.display(view)
            prompt = card.render_prompt(sample, (image.shape[1], image.shape[0]))
            prediction = model.generate([([image], prompt)], temperature=0.0)[0].text
        state = metric.score(prediction, sample)
        states[sample.modality].append(state)
        states["all"].append(state)
    return {modality: float(metric.summarize(found)) for modality, found in states.items()}


def paragraph() -> str:
    from medfm_robust_plugin.models.base import load_model
    from medfm_robust_plugin.tasks import get_task

    samples = get_task("MedFMRobust-Mini-VQA").load().samples
    per_modality = Counter(s.modality for s in samples)
    grounding = clean_scores(
        "MedFMRobust-Mini-Grounding", load_model("baseline:grounding"), "acc_iou_0.5"
    )
    unfitted = clean_scores("MedFMRobust-Mini-VQA", load_model("baseline:majority"), "accuracy")
    fitted_model = load_model("baseline:majority").fit(samples)
    fitted = clean_scores("MedFMRobust-Mini-VQA", fitted_model, "accuracy")
    dice = clean_scores("MedFMRobust-Mini-Seg", load_model("baseline:box-otsu"), "dice")
    counts = sorted(set(per_modality.values()))
    cases = f"{counts[0]} cases per modality" if len(counts) == 1 else "cases per modality vary"
    modalities = [m for m in sorted(dice) if m != "all"]
    return (
        f"On the embedded mini suite (128 x 128 phantoms, {cases}, clean images; "
        "`python docs/baseline_numbers.py` recomputes these), `baseline:grounding` reaches "
        "Acc@IoU0.5 "
        + ", ".join(f"{grounding[m]:.2f} on {m}" for m in sorted(grounding) if m != "all")
        + f"; `baseline:majority` answers {100 * unfitted['all']:.1f} % of the VQA items unfitted "
        f"and {100 * fitted['all']:.1f} % when fitted on the same items; `baseline:box-otsu` "
        "reaches a mean Dice of " + ", ".join(f"{dice[m]:.3f} on {m}" for m in modalities) + "."
    )


def wrap(text: str, width: int = 100) -> str:
    import textwrap

    return textwrap.fill(text, width=width, break_on_hyphens=False, break_long_words=False)


def main() -> None:
    text = wrap(paragraph())
    print(text)
    if "--write" in sys.argv:
        page = PAGE.read_text()
        start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
        PAGE.write_text(page[:start] + "\n" + text + "\n" + page[end:])


if __name__ == "__main__":
    main()
