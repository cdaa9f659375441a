"""VQA accuracy: reading the chosen option from free text, and the optional judge model."""

from __future__ import annotations

import pytest

from medfm_robust_plugin.data.sample import Sample
from medfm_robust_plugin.metrics import MetricError, get_metric
from medfm_robust_plugin.metrics.vqa import extract_choice, judge_choice, make_judge_accuracy
from medfm_robust_plugin.models.base import Generation

OPTIONS = {"A": "Yes", "B": "No", "C": "No abnormality", "D": "Cannot be determined"}


@pytest.mark.parametrize(
    "answer, letter",
    [
        ("B", "B"),
        ("b", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("[C]", "C"),
        ("**B**", "B"),
        ("The answer is (B)", "B"),
        ("The answer is B because the lesion is benign.", "B"),
        ("Answer: B) No", "B"),
        ("Final answer: **D**", "D"),
        ("The correct answer is **(D) Cannot be determined**.", "D"),
        ("C. No abnormality\nThe image shows normal anatomy.", "C"),
        ("B\n\nThe mass is not visible.", "B"),
        ("I would pick option C here.", "C"),
        ("After looking at the image, (A) seems right.", "A"),
        ("Yes", "A"),
        ("yes.", "A"),
        ("The answer is: no", "B"),
        ("NO ABNORMALITY", "C"),
        ("The scan shows no abnormality.", "C"),  # "no" lies inside the longer "no abnormality"
        ("Cannot be determined from this view", "D"),
    ],
)
def test_extract_choice_reads_the_forms_models_answer_in(answer, letter):
    assert extract_choice(answer, OPTIONS) == letter


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "The answer is A or B",
        "(A) Yes. On second thought, (B).",
        "Answer: A. Final answer: B",
        "Yes, or maybe no",
        "I cannot tell.",
        "It could be A. Yes or B. No",
    ],
)
def test_extract_choice_refuses_ambiguous_or_missing_choices(answer):
    assert extract_choice(answer, OPTIONS) is None


def test_a_capital_a_in_prose_is_not_option_a():
    options = {"A": "Liver", "B": "Spleen"}
    assert extract_choice("A large lesion in the spleen", options) == "B"
    assert extract_choice("the answer is a lesion of the liver", options) == "A"


def test_accuracy_is_registered_and_scores_samples():
    sample = Sample(
        "q1", "omnimedvqa", "ct", image=None, question="Tumour?", options=OPTIONS, answer="C"
    )
    accuracy = get_metric("accuracy")
    assert accuracy.kinds == ("vqa",)
    assert accuracy.score("The answer is (C) No abnormality", sample) == 1.0
    assert accuracy.score(Generation("no abnormality"), sample) == 1.0  # a Generation's text
    assert accuracy.score("B", sample) == 0.0
    assert accuracy.score("A or C", sample) == 0.0
    assert accuracy.summarize([1.0, 0.0, 1.0, 1.0]) == 0.75


def test_accuracy_names_the_sample_without_options():
    sample = Sample("q9", "vqa_rad", "xray", image=None, question="?", answer="A")
    with pytest.raises(MetricError, match="vqa_rad/q9"):
        get_metric("accuracy").score("A", sample)


class RecordingJudge:
    """A judge model that answers a fixed reply and records what it was asked."""

    def __init__(self, reply: str):
        self.reply = reply
        self.calls: list[tuple] = []

    def generate(self, items, *, max_new_tokens=512, temperature=0.0, system=None):
        self.calls.append((items, max_new_tokens, temperature))
        return [Generation(self.reply) for _ in items]


def test_judge_reads_only_what_the_rules_cannot():
    sample = Sample(
        "q2", "d", "mri", image=None, question="Is there a mass?", options=OPTIONS, answer="B"
    )
    judge = RecordingJudge("B")
    metric = make_judge_accuracy(judge)
    assert metric.score("The answer is (B)", sample) == 1.0
    assert judge.calls == []  # clear answers cost nothing
    assert metric.score("I don't see any mass there at all.", sample) == 1.0
    ((items, max_new_tokens, temperature),) = judge.calls
    ((images, prompt),) = items
    assert images == [] and temperature == 0.0 and max_new_tokens <= 16
    assert "Is there a mass?" in prompt and "D. Cannot be determined" in prompt
    assert "I don't see any mass there at all." in prompt


def test_judge_choice_reads_the_judges_reply_with_the_same_rules():
    sample = Sample("q3", "d", "ct", image=None, question="?", options=OPTIONS, answer="A")
    assert judge_choice("hmm", sample, RecordingJudge("The answer is (A).")) == "A"
    assert judge_choice("hmm", sample, RecordingJudge("None")) is None
    assert make_judge_accuracy(RecordingJudge("None")).score("hmm", sample) == 0.0


def test_a_failing_judge_raises_so_the_sample_is_recorded_as_failed():
    class BrokenJudge:
        def generate(self, items, **kwargs):
            raise ConnectionError("judge server down")

    sample = Sample("q4", "d", "ct", image=None, question="?", options=OPTIONS, answer="A")
    with pytest.raises(ConnectionError):
        make_judge_accuracy(BrokenJudge()).score("unclear", sample)
