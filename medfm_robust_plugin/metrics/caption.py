"""Captioning and report generation: BLEU-1..4, ROUGE-L and CIDEr-D, in plain Python and numpy.

The definitions are those of the COCO caption evaluation (pycocoevalcap: Papineni et al. 2002 for
BLEU, Lin 2004 for ROUGE-L, Vedantam et al. 2015 for CIDEr-D), which medical captioning and report
papers quote, without its Java tokenizer: ``tokenize`` approximates the Stanford PTB tokenizer
with lowercasing and punctuation removal as pycocoevalcap applies them.

BLEU and CIDEr-D are corpus metrics: a sample's state keeps its n-gram statistics (BLEU: clipped
matches and totals per order, hypothesis length and closest reference length; CIDEr-D: the
tokenised hypothesis and references, whose n-grams and the set's document frequencies make the
score), and ``aggregate`` computes the score of the set. Their aggregates also take per-sample
weights (``prepare(states)(weights)``), so that a bootstrap resample costs one matrix product
instead of a rescoring. ROUGE-L is the mean of per-sample scores.

References: ``sample.meta["references"]`` (a list of texts) when a loader gives several, else
``sample.answer``.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..hookspecs import hookimpl
from .base import Metric, MetricError
from .vqa import answer_text

MAX_ORDER = 4
CIDER_SIGMA = 6.0  # the length penalty's width in CIDEr-D (words)
ROUGE_BETA = 1.2  # recall weight of pycocoevalcap's ROUGE-L
# pycocoevalcap adds these to BLEU's counts so that an empty order gives ~0 instead of 0/0.
_TINY = 1e-15
_SMALL = 1e-9

# Tokens the PTB tokenizer emits for punctuation, which pycocoevalcap drops (plus the brackets and
# quotes that PTB would have turned into -LRB-, ``, '' and so on).
_PUNCTUATION = {"''", "'", "``", "`", '"', ".", "?", "!", ",", ":", ";", "-", "--", "..."}
_PUNCTUATION |= set("()[]{}")
_CLITIC = re.compile(r"(?i)(\w)(n't)\b|'(s|re|ve|ll|d|m)\b")
# A word keeps inner hyphens, slashes and dots ("x-ray", "3.5-cm", "and/or"), and commas or colons
# between digits ("1,000", "10:30"); anything else that is not a space is a token of its own.
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\w+(?:(?:[-/.]|(?<=\d)[,:](?=\d))\w+)*|[^\w\s]")

NgramCounts = Counter  # (word, ...) -> count


def tokenize(text: str) -> list[str]:
    """Lowercase PTB-like tokens without punctuation, as pycocoevalcap's tokenizer gives them.

    "The patient's CT (axial) shows a 3.5-cm mass." -> the patient 's ct axial shows a 3.5-cm mass
    """
    text = text.lower().replace("\n", " ")
    text = _CLITIC.sub(
        lambda m: f"{m.group(1)} {m.group(2)}" if m.group(2) else f" {m.group(0)}", text
    )
    return [token for token in _TOKEN.findall(text) if token not in _PUNCTUATION]


def references(sample: Any) -> list[str]:
    """The reference texts of a caption or report sample."""
    refs = sample.meta.get("references") if getattr(sample, "meta", None) else None
    if refs:
        return [str(r) for r in refs]
    if getattr(sample, "answer", None):
        return [str(sample.answer)]
    raise MetricError(
        f"sample '{sample.dataset}/{sample.id}' has no reference text (answer or "
        "meta['references']) to score a caption against"
    )


def ngrams(tokens: Sequence[str], max_order: int = MAX_ORDER) -> NgramCounts:
    """Counts of every n-gram of orders 1..max_order."""
    counts: NgramCounts = Counter()
    for order in range(1, max_order + 1):
        for start in range(len(tokens) - order + 1):
            counts[tuple(tokens[start : start + order])] += 1
    return counts


def _texts(prediction: Any, sample: Any) -> tuple[list[str], list[list[str]]]:
    return tokenize(answer_text(prediction)), [tokenize(r) for r in references(sample)]


# ------------------------------------------------------------------ BLEU


def bleu_statistics(hypothesis: Sequence[str], refs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """What corpus BLEU needs of one sample (tokenised inputs).

    ``matches[k]``: (k+1)-grams of the hypothesis found in a reference, clipped by the largest
    count in any one reference; ``totals[k]``: its (k+1)-grams; ``ref_len``: the reference length
    closest to the hypothesis length (the shorter on a tie).
    """
    hyp_counts = ngrams(hypothesis)
    max_ref: dict[tuple[str, ...], int] = {}
    for ref in refs:
        for gram, count in ngrams(ref).items():
            max_ref[gram] = max(max_ref.get(gram, 0), count)
    matches = [0] * MAX_ORDER
    for gram, count in hyp_counts.items():
        matches[len(gram) - 1] += min(count, max_ref.get(gram, 0))
    hyp_len = len(hypothesis)
    ref_len = min((abs(len(r) - hyp_len), len(r)) for r in refs)[1]
    return {
        "hyp_len": hyp_len,
        "ref_len": ref_len,
        "matches": matches,
        "totals": [max(0, hyp_len - k) for k in range(MAX_ORDER)],
    }


def _bleu_from_sums(sums: np.ndarray, order: int) -> np.ndarray:
    """BLEU-``order`` from summed statistics, rows [hyp_len, ref_len, matches.., totals..]."""
    hyp_len, ref_len = sums[..., 0], sums[..., 1]
    matches = sums[..., 2 : 2 + MAX_ORDER]
    totals = sums[..., 2 + MAX_ORDER :]
    precisions = (matches[..., :order] + _TINY) / (totals[..., :order] + _SMALL)
    score = np.prod(precisions, axis=-1) ** (1.0 / order)
    ratio = (hyp_len + _TINY) / (ref_len + _SMALL)
    with np.errstate(divide="ignore", over="ignore"):
        brevity = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return score * brevity


def _bleu_matrix(states: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.array(
        [[s["hyp_len"], s["ref_len"], *s["matches"], *s["totals"]] for s in states], dtype=float
    )


class CorpusBleu:
    """Corpus BLEU-n of a set of per-sample states (pycocoevalcap's ``Bleu``, 'closest' length)."""

    def __init__(self, order: int):
        self.order = order

    def __call__(self, states: Sequence[dict[str, Any]]) -> float:
        return float(self.prepare(states)(np.ones((1, len(states))))[0])

    def prepare(self, states: Sequence[dict[str, Any]]) -> Callable[[np.ndarray], np.ndarray]:
        """A function of sample weights (B x n, e.g. bootstrap counts) -> B corpus scores."""
        table = _bleu_matrix(states)
        return lambda weights: _bleu_from_sums(np.asarray(weights, float) @ table, self.order)

    def sentence(self, state: dict[str, Any]) -> float:
        """The sample's own BLEU-n (pycocoevalcap's per-image score)."""
        return float(_bleu_from_sums(_bleu_matrix([state])[0], self.order))


def bleu_score(prediction: Any, sample: Any) -> dict[str, Any]:
    return bleu_statistics(*_texts(prediction, sample))


def _bleu_metric(order: int, name: str) -> Metric:
    corpus = CorpusBleu(order)
    return Metric(
        name=name,
        kinds=("caption", "report"),
        score=bleu_score,
        aggregate=corpus,
        value=corpus.sentence,
        description=f"Corpus BLEU-{order} (COCO caption evaluation: clipped n-gram precisions, "
        "closest-reference brevity penalty)",
    )


# ------------------------------------------------------------------ ROUGE-L


def longest_common_subsequence(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(
    hypothesis: Sequence[str], refs: Sequence[Sequence[str]], beta: float = ROUGE_BETA
) -> float:
    """ROUGE-L F-measure: LCS precision and recall (each the best over the references), beta 1.2."""
    if not hypothesis:
        return 0.0
    lcs = [longest_common_subsequence(ref, hypothesis) for ref in refs]
    precision = max(n / len(hypothesis) for n in lcs)
    recall = max(n / len(ref) if ref else 0.0 for n, ref in zip(lcs, refs))
    if precision == 0 or recall == 0:
        return 0.0
    return (1 + beta**2) * precision * recall / (recall + beta**2 * precision)


def rouge_l_score(prediction: Any, sample: Any) -> float:
    return rouge_l(*_texts(prediction, sample))


# ------------------------------------------------------------------ CIDEr-D


class CorpusCiderD:
    """CIDEr-D of a set (pycocoevalcap's ``Cider``, which is CIDEr-D: clipped tf-idf n-gram
    cosines, Gaussian length penalty sigma 6, mean over n = 1..4 and references, x10).

    The idf of an n-gram is log(set size) - log(references of the set that contain it), so the
    score of a sample depends on the set it is evaluated in. A bootstrap resample counts each
    drawn sample once per draw, in the set size and in the document frequencies, as rescoring the
    resampled list would.
    """

    def __init__(self, max_order: int = MAX_ORDER, sigma: float = CIDER_SIGMA):
        self.max_order = max_order
        self.sigma = sigma

    def __call__(self, states: Sequence[dict[str, Any]]) -> float:
        return float(self.prepare(states)(np.ones((1, len(states))))[0])

    def prepare(self, states: Sequence[dict[str, Any]]) -> Callable[[np.ndarray], np.ndarray]:
        """A function of sample weights (B x n) -> B corpus scores."""
        tables = _CiderTables(states, self.max_order, self.sigma)
        return tables.scores


class _ReferenceLayout:
    """What CIDEr-D needs of a set's references alone: the n-gram columns, which sample's
    references hold each column, and per (sample, reference, order) row the reference's r^2.

    N-grams with the same idf share a column: those found in one sample's references only (idf
    from that sample's weight) and those in no reference (idf = log of the set size); the others
    (in several samples' references) have a column each. This keeps the columns few and a
    thousand resamples fast. Every condition of a run has the same references, so the layout is
    built once per set of samples.
    """

    def __init__(self, refs: tuple[tuple[str, ...], ...], max_order: int):
        from scipy import sparse

        counted = [_reference_ngrams(sample_refs, max_order) for sample_refs in refs]
        n = len(refs)
        owner: dict[tuple[str, ...], int] = {}  # n-gram -> the sample whose references hold it
        shared: set[tuple[str, ...]] = set()  # n-grams in the references of several samples
        for i, (_, union) in enumerate(counted):
            for gram in union:
                if owner.setdefault(gram, i) != i:
                    shared.add(gram)
        column = {gram: k for k, gram in enumerate(shared)}
        for gram, i in owner.items():
            column.setdefault(gram, len(shared) + i)
        self.column = column
        self.absent = len(shared) + n
        self.width = width = self.absent + 1
        presence_rows, presence_cols = [], []
        pair_rows, pair_cols, ref_squared = [], [], []
        self.refs: list[list[tuple[NgramCounts, int, int]]] = []  # (counts, bigrams, first row)
        pair_sample: list[int] = []
        for i, (sample_refs, union) in enumerate(counted):
            present = {column[g] for g in union}
            presence_rows.extend([i] * len(present))
            presence_cols.extend(present)
            rows = []
            for ref, ref_bigrams in sample_refs:
                base = len(pair_sample)
                rows.append((ref, ref_bigrams, base))
                pair_sample.extend([i] * max_order)
                for gram, count in ref.items():
                    pair_rows.append(base + len(gram) - 1)
                    pair_cols.append(column[gram])
                    ref_squared.append(count * count)
            self.refs.append(rows)
        pairs = self.pairs = len(pair_sample)
        self.presence_t = sparse.csr_matrix(
            (np.ones(len(presence_rows)), (presence_rows, presence_cols)), shape=(n, width)
        ).T.tocsr()
        self.ref_norm = sparse.csr_matrix(
            (np.asarray(ref_squared, float), (pair_rows, pair_cols)), shape=(pairs, width)
        )
        pair_sample_ = np.asarray(pair_sample, dtype=int)
        self.hyp_index = pair_sample_ * max_order + np.arange(pairs) % max_order
        self.pair_to_sample = sparse.csr_matrix(
            (np.ones(pairs), (pair_sample_, np.arange(pairs))), shape=(n, pairs)
        )
        ref_count = np.asarray([len(r) for r in refs], dtype=float)
        self.divisor = ref_count[:, None] * max_order


@functools.lru_cache(maxsize=8)
def _reference_layout(refs: tuple[tuple[str, ...], ...], max_order: int) -> _ReferenceLayout:
    return _ReferenceLayout(refs, max_order)


class _CiderTables:
    """CIDEr-D as sparse matrices over n-gram columns, so that a score is a few products.

    Each pair (sample, reference, order) has a row of clipped overlaps min(h, r) * r and of r^2;
    each (sample, order) a row of h^2; with the squared idf of each column, the cosine numerator
    and norms are matrix-vector products.
    """

    def __init__(self, states: Sequence[dict[str, Any]], max_order: int, sigma: float):
        from scipy import sparse

        layout = _reference_layout(tuple(tuple(state["refs"]) for state in states), max_order)
        column, absent = layout.column, layout.absent
        hyp_rows, hyp_cols, hyp_squared = [], [], []
        clip_rows, clip_cols, clipped = [], [], []
        penalty = np.empty(layout.pairs)
        for i, (state, sample_refs) in enumerate(zip(states, layout.refs)):
            hyp = ngrams(state["hyp"].split(), max_order)
            for gram, count in hyp.items():
                hyp_rows.append(i * max_order + len(gram) - 1)
                hyp_cols.append(column.get(gram, absent))
                hyp_squared.append(count * count)
            hyp_bigrams = _bigram_count(hyp)
            for ref, ref_bigrams, base in sample_refs:
                delta = hyp_bigrams - ref_bigrams
                penalty[base : base + max_order] = math.exp(-(delta**2) / (2 * sigma**2))
                for gram, count in hyp.items():
                    in_ref = ref.get(gram)
                    if in_ref:
                        clip_rows.append(base + len(gram) - 1)
                        clip_cols.append(column[gram])
                        clipped.append(min(count, in_ref) * in_ref)
        shape = (len(states) * max_order, layout.width)
        self.layout = layout
        self.width = layout.width
        self.hyp_norm = sparse.csr_matrix(
            (np.asarray(hyp_squared, float), (hyp_rows, hyp_cols)), shape=shape
        )
        self.overlap = sparse.csr_matrix(
            (np.asarray(clipped, float), (clip_rows, clip_cols)), shape=(layout.pairs, layout.width)
        )
        self.penalty = penalty[:, None]

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """CIDEr-D of the set under each row of sample weights (B x n) -> B scores."""
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        # In chunks, so that the per-resample document frequencies stay small in memory.
        step = max(1, 4_000_000 // self.width)
        return np.concatenate(
            [self._chunk(weights[k : k + step]) for k in range(0, len(weights), step)]
        )

    def _chunk(self, weights: np.ndarray) -> np.ndarray:
        layout = self.layout
        set_size = weights.sum(axis=1)
        document_frequency = layout.presence_t @ weights.T  # columns x B
        idf = np.log(np.maximum(document_frequency, 1.0, out=document_frequency))
        np.subtract(np.log(set_size)[None, :], idf, out=idf)
        idf_squared = np.square(idf, out=idf)
        numerator = self.overlap @ idf_squared  # pairs x B
        denominator = (self.hyp_norm @ idf_squared)[layout.hyp_index]
        denominator *= layout.ref_norm @ idf_squared
        np.sqrt(denominator, out=denominator)
        # pycocoevalcap leaves the numerator undivided where a norm is 0 (it is 0 there too)
        np.divide(numerator, denominator, out=numerator, where=denominator > 0)
        numerator *= self.penalty
        per_sample = layout.pair_to_sample @ numerator
        per_sample *= 10.0 / layout.divisor
        return np.einsum("bn,nb->b", weights, per_sample) / set_size


@functools.lru_cache(maxsize=16384)
def _reference_ngrams(
    refs: tuple[str, ...], max_order: int
) -> tuple[list[tuple[NgramCounts, int]], frozenset[tuple[str, ...]]]:
    """Each reference's n-gram counts and bigram count, and the set of all their n-grams."""
    counted = [ngrams(r.split(), max_order) for r in refs]
    return [(c, _bigram_count(c)) for c in counted], frozenset().union(*counted)


def _bigram_count(counts: NgramCounts) -> int:
    """The length CIDEr-D compares: pycocoevalcap counts a sentence's bigrams (words - 1)."""
    return sum(count for gram, count in counts.items() if len(gram) == 2)


def cider_d_score(prediction: Any, sample: Any) -> dict[str, Any]:
    hypothesis, refs = _texts(prediction, sample)
    return {"hyp": " ".join(hypothesis), "refs": [" ".join(r) for r in refs]}


def _no_sample_value(state: Any) -> float:
    return float("nan")  # CIDEr-D's idf comes from the whole set: a sample alone has no score


# ------------------------------------------------------------------ registration

BLEU_METRICS = [_bleu_metric(order, f"bleu{order}") for order in range(1, MAX_ORDER + 1)]
BLEU = _bleu_metric(MAX_ORDER, "bleu")
ROUGE_L = Metric(
    name="rouge_l",
    kinds=("caption", "report"),
    score=rouge_l_score,
    description="ROUGE-L: longest-common-subsequence F-measure (beta 1.2), mean over samples",
)
CIDER_D = Metric(
    name="cider",
    kinds=("caption", "report"),
    score=cider_d_score,
    aggregate=CorpusCiderD(),
    value=_no_sample_value,
    description="CIDEr-D: consensus tf-idf n-gram similarity to the references (x10), over the set",
)


@hookimpl
def register_metrics(register):
    for metric in (BLEU, *BLEU_METRICS, ROUGE_L, CIDER_D):
        register(metric)
