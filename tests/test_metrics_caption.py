"""Caption and report metrics checked against the established implementations on the same inputs.

pycocoevalcap's BLEU, ROUGE-L and CIDEr-D scorers are pure Python (only its tokenizer needs Java),
so they are run on pre-tokenised captions; sacrebleu and rouge-score are compared where their
definitions align with COCO's.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from medfm_robust_plugin.data.sample import Sample
from medfm_robust_plugin.metrics import get_metric
from medfm_robust_plugin.metrics.caption import (
    CorpusBleu,
    CorpusCiderD,
    bleu_statistics,
    rouge_l,
    tokenize,
)

WORDS = [
    *("the", "a", "chest", "ct", "scan", "shows", "mass", "in", "left", "right", "lung", "lower"),
    *("upper", "lobe", "nodule", "small", "large", "with", "no", "without", "axial", "mri"),
    *("lesion", "enhancing", "effusion", "pleural", "normal", "heart", "size"),
]


def caption_pairs(count: int = 36, seed: int = 0) -> list[tuple[list[str], list[list[str]]]]:
    """(hypothesis, references) token lists: 1-4 references, some exact copies, some empty."""
    rand = random.Random(seed)

    def sentence(low: int, high: int) -> list[str]:
        return [rand.choice(WORDS) for _ in range(rand.randint(low, high))]

    pairs = []
    for i in range(count):
        refs = [sentence(1, 16) for _ in range(rand.randint(1, 4))]
        hyp = refs[0][:] if i % 9 == 0 else [] if i == 5 else sentence(1, 18)
        if i % 4 == 1:  # share a phrase, so that 3- and 4-grams match
            hyp = hyp + refs[-1][:5]
        pairs.append((hyp, refs))
    return pairs


def coco_inputs(pairs):
    gts = {i: [" ".join(r) for r in refs] for i, (_, refs) in enumerate(pairs)}
    res = {i: [" ".join(hyp)] for i, (hyp, _) in enumerate(pairs)}
    return gts, res


def cider_states(pairs):
    return [{"hyp": " ".join(h), "refs": [" ".join(r) for r in refs]} for h, refs in pairs]


def test_tokenize_approximates_the_ptb_tokenizer_with_punctuation_removed():
    assert tokenize("The patient's CT (axial) shows a 3.5-cm mass, left lobe.") == [
        "the", "patient", "'s", "ct", "axial", "shows", "a", "3.5-cm", "mass", "left", "lobe",
    ]  # fmt: skip
    assert tokenize("Don't miss 1,000 nodules: x-ray and/or MRI!") == [
        "do", "n't", "miss", "1,000", "nodules", "x-ray", "and/or", "mri",
    ]  # fmt: skip
    assert tokenize("  ...  ") == []


def test_bleu_matches_pycocoevalcap_corpus_and_per_sample():
    import pycocoevalcap.bleu.bleu as bleu_module

    pairs = caption_pairs()
    expected, per_sample = bleu_module.Bleu(4).compute_score(*coco_inputs(pairs), verbose=0)
    states = [bleu_statistics(h, refs) for h, refs in pairs]
    for order in range(1, 5):
        assert CorpusBleu(order)(states) == pytest.approx(expected[order - 1], abs=1e-6)
        sentence = [CorpusBleu(order).sentence(s) for s in states]
        np.testing.assert_allclose(sentence, per_sample[order - 1], atol=1e-6)


def test_rouge_l_matches_pycocoevalcap():
    import pycocoevalcap.rouge.rouge as rouge_module

    pairs = caption_pairs()
    expected, per_sample = rouge_module.Rouge().compute_score(*coco_inputs(pairs))
    ours = [rouge_l(h, refs) for h, refs in pairs]
    np.testing.assert_allclose(ours, per_sample, atol=1e-6)
    assert np.mean(ours) == pytest.approx(expected, abs=1e-6)


def test_cider_d_matches_pycocoevalcap():
    import pycocoevalcap.cider.cider as cider_module

    pairs = caption_pairs()
    expected, _ = cider_module.Cider().compute_score(*coco_inputs(pairs))
    assert expected > 0.1
    assert CorpusCiderD()(cider_states(pairs)) == pytest.approx(expected, abs=1e-6)


def test_weighted_aggregates_equal_rescoring_the_resampled_list():
    """A bootstrap resample as weights gives what pycocoevalcap gives on the resampled list."""
    import pycocoevalcap.bleu.bleu as bleu_module
    import pycocoevalcap.cider.cider as cider_module

    pairs = caption_pairs(24, seed=3)
    draws = np.random.default_rng(7).integers(0, len(pairs), len(pairs))
    resampled = [pairs[i] for i in draws]
    weights = np.bincount(draws, minlength=len(pairs))[None, :]
    cider, _ = cider_module.Cider().compute_score(*coco_inputs(resampled))
    assert CorpusCiderD().prepare(cider_states(pairs))(weights)[0] == pytest.approx(cider, abs=1e-6)
    bleu, _ = bleu_module.Bleu(4).compute_score(*coco_inputs(resampled), verbose=0)
    states = [bleu_statistics(h, refs) for h, refs in pairs]
    assert CorpusBleu(4).prepare(states)(weights)[0] == pytest.approx(bleu[3], abs=1e-6)


def test_bleu_agrees_with_sacrebleu_where_the_definitions_align():
    """Single references, no tokenisation or smoothing in sacrebleu, every n-gram order matched:
    then both are Papineni's corpus BLEU with the closest-reference brevity penalty. They part
    where an order has no match: sacrebleu gives 0, pycocoevalcap's 1e-15 / 1e-9 guards give a
    small positive number, which we keep."""
    import sacrebleu as sacrebleu

    pairs = [(h, refs[:1]) for h, refs in caption_pairs(30, seed=1) if h]
    hyps = [" ".join(h) for h, _ in pairs]
    refs = [" ".join(r[0]) for _, r in pairs]
    states = [bleu_statistics(h, r) for h, r in pairs]
    assert all(sum(s["matches"][k] for s in states) > 0 for k in range(4))
    reference = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method="none")
    assert CorpusBleu(4)(states) == pytest.approx(reference.score / 100, rel=1e-6)


def test_rouge_l_agrees_with_rouge_score_precision_and_recall():
    """rouge-score reports F1 (beta 1) and takes the best reference by F; COCO's ROUGE-L uses
    beta 1.2 with the best precision and recall over references. On one reference the LCS
    precision and recall agree, and F_1.2 from rouge-score's P and R is our score."""
    import rouge_score.rouge_scorer as rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for hyp, refs in caption_pairs(30, seed=2):
        if not hyp:
            continue
        result = scorer.score(" ".join(refs[0]), " ".join(hyp))["rougeL"]
        p, r = result.precision, result.recall
        expected = 0.0 if p == 0 or r == 0 else (1 + 1.2**2) * p * r / (r + 1.2**2 * p)
        assert rouge_l(hyp, refs[:1]) == pytest.approx(expected, abs=1e-9)


def test_registered_caption_metrics_score_samples_from_their_text():
    samples = [
        Sample("c1", "rocov2", "ct", image=None, answer="Axial CT of the chest shows a mass."),
        Sample("c2", "rocov2", "mri", image=None, answer="MRI of the brain, no lesion."),
        Sample(
            "c3",
            "iu_xray",
            "xray",
            image=None,
            answer="ignored when references are given",
            meta={"references": ["Normal heart size.", "The heart is normal in size."]},
        ),
    ]
    predictions = [
        "Axial CT of the chest showing a mass",
        "Brain MRI with no lesion.",
        "Heart size normal",
    ]
    for name in ("bleu", "bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider"):
        metric = get_metric(name)
        assert metric.kinds == ("caption", "report")
        states = [metric.score(p, s) for p, s in zip(predictions, samples)]
        assert 0.0 < metric.summarize(states) <= (10.0 if name == "cider" else 1.0)
    bleu, bleu4 = get_metric("bleu"), get_metric("bleu4")
    states = [bleu.score(p, s) for p, s in zip(predictions, samples)]
    assert bleu.summarize(states) == bleu4.summarize(states)  # "bleu" is BLEU-4


def test_per_sample_values_shown_in_records():
    perfect = Sample("c4", "rocov2", "ct", image=None, answer="a small nodule in the left lung")
    bleu, rouge, cider = get_metric("bleu"), get_metric("rouge_l"), get_metric("cider")
    # pycocoevalcap's 1e-9 guard against 0/0 keeps it a hair below 1
    assert bleu.per_sample(
        bleu.score("A small nodule in the left lung.", perfect)
    ) == pytest.approx(1)
    assert rouge.per_sample(rouge.score("A small nodule, in the left lung!", perfect)) == 1.0
    # CIDEr-D weighs n-grams by the whole set's references: a sample alone has no score.
    assert np.isnan(cider.per_sample(cider.score("a small nodule", perfect)))


def test_an_empty_caption_scores_zero():
    sample = Sample("c5", "rocov2", "ct", image=None, answer="a mass in the liver")
    other = Sample("c6", "rocov2", "ct", image=None, answer="a cyst in the kidney")
    assert get_metric("rouge_l").score("", sample) == 0.0
    cider = get_metric("cider")
    assert cider.summarize([cider.score("", sample), cider.score("", other)]) == 0.0
    bleu = get_metric("bleu1")
    assert bleu.summarize([bleu.score("", sample)]) == pytest.approx(0.0, abs=1e-6)
