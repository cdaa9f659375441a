"""Multiple-choice VQA: which option a free-text answer chooses, and accuracy.

Models rarely answer with the bare letter asked for. ``extract_choice`` reads the forms they use
("B", "(B)", "B.", "The answer is (B)", "Answer: B) Yes", the option's text, markdown bold, prose
around it) and refuses to guess when an answer claims two different options. When no rule finds a
choice, ``make_judge_accuracy`` can ask a judge model (any registered vision-language model, such
as an OpenAI-compatible one) which option the answer chose, as the paper's evaluation offers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..hookspecs import hookimpl
from .base import Metric, MetricError

# Phrases that introduce the chosen option ("The answer is", "Answer:", "correct option is").
_ANSWER_LEAD = (
    r"\b(?:final\s+answer|correct\s+answer|answer|correct\s+(?:option|choice)|"
    r"best\s+(?:option|choice|answer)|(?:i\s+)?(?:choose|chose|pick|select))\b"
    r"(?:\s+(?:is|would\s+be|should\s+be|will\s+be|=))?\s*(?:[:=-]\s*)?"
    r"(?:option\s+|choice\s+|letter\s+)?"
)
_MARKDOWN = re.compile(r"\*\*|__|`+|\*")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_JUDGE_PROMPT = """You grade answers to a multiple-choice question.

Question: {question}

Options:
{options}

A model answered:
\"\"\"{answer}\"\"\"

Which option did the model choose? Reply with the option letter only. Reply "None" if it chose no
option or more than one."""


def answer_text(prediction: Any) -> str:
    """The text of a model's answer: a string, or an object with ``.text`` (a ``Generation``)."""
    if prediction is None:
        return ""
    text = getattr(prediction, "text", prediction)
    return text if isinstance(text, str) else str(text)


def _normalised(text: str) -> str:
    """Lowercase words separated by single spaces, for matching option texts."""
    return _NOT_WORD.sub(" ", text.lower()).strip()


def _letter_class(letters: list[str]) -> str:
    return "[" + "".join(re.escape(letter) for letter in letters) + "]"


def _single_letter(claimed: set[str]) -> str | None:
    """The one letter claimed, or None when none or several (an ambiguous answer)."""
    return next(iter(claimed)) if len(claimed) == 1 else None


def _bare_letter(text: str, letters: list[str]) -> str | None:
    """The whole answer is one option letter, possibly wrapped: "B", "(b)", "B.", "[B]"."""
    match = re.fullmatch(r"[\s(\[{'\"]*([A-Za-z0-9])[\s)\]}'\".:,;!]*", text)
    if match and match.group(1).upper() in letters:
        return match.group(1).upper()
    return None


def _stated_letters(text: str, letters: list[str]) -> tuple[set[str], list[str]]:
    """Letters after an answer phrase ("The answer is (B)", "Answer: B) Yes"), and what follows
    each answer phrase (to match option texts in when no letter follows)."""
    klass = _letter_class(letters)
    claimed: set[str] = set()
    tails: list[str] = []
    for lead in re.finditer(_ANSWER_LEAD, text, flags=re.IGNORECASE):
        tail = text[lead.end() :]
        # A capital letter standing alone ("(B)", "B)", "B because"); case matters here, so that
        # "the answer is a mass" is prose, not option A.
        first = re.match(rf"[(\[]\s*({klass})\s*[)\]]|({klass})(?![A-Za-z0-9'-])", tail)
        if first is None:
            tails.append(tail)
            continue
        claimed.add(next(g for g in first.groups() if g))
        # "The answer is A or B" claims both.
        more = re.match(
            rf"[(\[]?{klass}[)\]]?\s*(?:,|or|and|/)\s*[(\[]?({klass})(?![A-Za-z])", tail
        )
        if more:
            claimed.add(more.group(1))
    return claimed, tails


def _claimed_letters(text: str, letters: list[str]) -> set[str]:
    """Letters an answer claims without an answer phrase: a leading "B)" / "(B)" / "B." or
    "B" alone on the first line, and "(B)" / "option B" anywhere."""
    klass = _letter_class(letters)
    claimed = set()
    leading = re.match(rf"\s*(?:[(\[]\s*({klass})\s*[)\]]|({klass})(?:[).:]|\s*$|\s*\n))", text)
    if leading:
        claimed.add(next(g for g in leading.groups() if g))
    claimed.update(re.findall(rf"[(\[]({klass})[)\]]", text))
    claimed.update(
        m.upper()
        for m in re.findall(rf"\b(?:option|choice)\s+({klass})\b", text, flags=re.IGNORECASE)
        if m.upper() in letters
    )
    claimed.update(re.findall(rf"(?m)^\s*({klass})[).:]\s", text))
    return claimed


def _option_by_text(text: str, options: Mapping[str, str]) -> str | None:
    """The option whose text the answer contains, preferring the longest match; None when two
    options remain after dropping matches that lie inside a longer one ("no" in "no tumour")."""
    haystack = f" {_normalised(text)} "
    spans: list[tuple[int, int, str]] = []
    for letter, option in options.items():
        needle = _normalised(str(option))
        if not needle:
            continue
        for found in re.finditer(re.escape(f" {needle} "), haystack):
            spans.append((found.start(), found.end(), letter))
    if not spans:
        return None
    kept = {
        letter
        for start, end, letter in spans
        if not any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in spans)
    }
    return next(iter(kept)) if len(kept) == 1 else None


def extract_choice(text: str, options: Mapping[str, str]) -> str | None:
    """The option letter a free-text answer chooses, or None when it chooses none or several.

    In order: the whole answer is a letter or exactly an option's text; a letter after an answer
    phrase ("The answer is (B)", "Answer: B) Yes"); a letter claimed elsewhere ("(B) Yes",
    "B. Yes", "option B"); the text of one option (case and punctuation ignored, longest match).
    Two different letters at the deciding step make the answer ambiguous: None.
    """
    if not options:
        raise MetricError("extract_choice needs the question's options, e.g. {'A': 'Yes', ...}")
    options = {str(k).strip().upper(): str(v) for k, v in options.items()}
    # Keys of one character are claimed as letters; longer keys are matched by their texts only.
    letters = [key for key in options if len(key) == 1]
    text = _MARKDOWN.sub("", answer_text(text)).strip()
    if not text:
        return None
    if letters:
        bare = _bare_letter(text, letters)
        if bare:
            return bare
    whole = _normalised(text)
    exact = {letter for letter, option in options.items() if _normalised(option) == whole}
    if exact:
        return _single_letter(exact)
    if letters:
        stated, tails = _stated_letters(text, letters)
        if stated:
            return _single_letter(stated)
        for tail in tails:  # "Answer: Yes": the option text right after the answer phrase
            chosen = _option_by_text(tail, options)
            if chosen:
                return chosen
        claimed = _claimed_letters(text, letters)
        if claimed:
            return _single_letter(claimed)
    return _option_by_text(text, options)


def _sample_options(sample: Any) -> dict[str, str]:
    options = getattr(sample, "options", None)
    if not options:
        raise MetricError(
            f"sample '{_sample_name(sample)}' has no options; accuracy needs a multiple-choice sample"
        )
    return dict(options)


def _sample_name(sample: Any) -> str:
    return f"{getattr(sample, 'dataset', '?')}/{getattr(sample, 'id', '?')}"


def _correct(choice: str | None, sample: Any) -> float:
    answer = str(getattr(sample, "answer", "") or "").strip().upper()
    if not answer:
        raise MetricError(f"sample '{_sample_name(sample)}' has no answer letter to score against")
    return float(choice is not None and choice == answer)


def accuracy_score(prediction: Any, sample: Any) -> float:
    """1.0 when the answer chooses the sample's correct option, else 0.0 (none or several: 0.0)."""
    return _correct(extract_choice(answer_text(prediction), _sample_options(sample)), sample)


def judge_choice(text: str, sample: Any, model: Any, max_new_tokens: int = 8) -> str | None:
    """Ask ``model`` (a vision-language model, used text-only) which option ``text`` chooses.

    The judge sees the question, the options and the answer, and replies with a letter; its reply
    is read with ``extract_choice``, so "B", "(B)" or "The answer is B" all work and "None" or an
    ambiguous reply gives None. A judge that fails raises, so that the sample is recorded as failed
    instead of silently scored 0.
    """
    options = _sample_options(sample)
    listing = "\n".join(f"{letter}. {option}" for letter, option in options.items())
    prompt = _JUDGE_PROMPT.format(
        question=getattr(sample, "question", "") or "", options=listing, answer=answer_text(text)
    )
    generations = model.generate([([], prompt)], max_new_tokens=max_new_tokens, temperature=0.0)
    if not generations:
        raise MetricError(f"judge model returned no answer for sample '{_sample_name(sample)}'")
    reply = answer_text(generations[0]).strip()
    if _normalised(reply) in ("none", "no option", "neither"):
        return None
    return extract_choice(reply, options)


def make_judge_accuracy(model: Any, name: str = "accuracy_judge") -> Metric:
    """Accuracy whose answers are read by the rules first and by ``model`` only when they fail.

    ``model`` is any object with ``generate(items, max_new_tokens=..., temperature=...)`` returning
    objects with ``.text`` (e.g. ``load_model("openai:gpt-4o-mini")``, or any OpenAI-compatible
    server). The judge is called only for answers the rules cannot read, so clear answers cost
    nothing and score exactly as ``accuracy``.
    """

    def score(prediction: Any, sample: Any) -> float:
        text = answer_text(prediction)
        choice = extract_choice(text, _sample_options(sample))
        if choice is None and text.strip():
            choice = judge_choice(text, sample, model)
        return _correct(choice, sample)

    return Metric(
        name=name,
        kinds=("vqa",),
        score=score,
        description="Multiple-choice accuracy; a judge model reads the answers the rules cannot",
    )


ACCURACY = Metric(
    name="accuracy",
    kinds=("vqa",),
    score=accuracy_score,
    description="Multiple-choice accuracy; the choice is read from free text by rules "
    "(letter, 'The answer is (B)', option text); none or several options score 0",
)


@hookimpl
def register_metrics(register):
    register(ACCURACY)
