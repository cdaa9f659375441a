"""The documentation's code runs: every ```bash and ```python block of the README and of the pages
below is executed as written, in order, in a fresh folder per page (shell blocks with this
environment's `medfm-robust` first on PATH, Python blocks in a subprocess), against a fake OpenAI
server on 127.0.0.1 for the blocks that call an API model.

A block that cannot run here (model weights, a GPU, a public dataset, a harness's own long run)
carries a marker with its reason, on the line before it::

    <!-- docs-test: skip (needs the BUSI dataset and the MedSAM weights) -->

or, where nothing may come before the block (the README's opening commands), on the line after it:
``<!-- docs-test: skip the block above (reason) -->``. Blocks in other languages (YAML, TOML,
JSON, CSV, layouts) are formats to read, not commands, and are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from .fake_api_servers import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[1]
PAGES = (
    "README.md",
    "docs/datasets.md",
    "docs/hosts.md",
    "docs/inspect.md",
    "docs/lm_eval.md",
    "docs/lmms_eval.md",
    "docs/llava_med.md",
    "docs/metrics.md",
    "docs/reference_set.md",
    "docs/segmenters.md",
    "docs/vlmeval.md",
)
# Pages whose blocks are not checked here yet: each would first need its skip markers.
UNCHECKED = ("docs/finetune.md",)
# At least this many blocks run; a block that turns into a skip must lower it on purpose.
EXPECTED_RUN = 16

SHELL, PYTHON = ("bash", "sh", "shell", "console"), ("python",)
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
SKIP_BEFORE = re.compile(r"<!-- docs-test: skip \((?P<why>[^)]+(?:\([^)]*\)[^)]*)*)\) -->\s*$")
SKIP_AFTER = re.compile(r"^\s*<!-- docs-test: skip the block above \((?P<why>.+)\) -->")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str
    skip: str | None  # the marker's reason, None when the block runs

    @property
    def runs(self) -> bool:
        return self.skip is None and self.lang in SHELL + PYTHON

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(page: str) -> list[Block]:
    text = (REPO / page).read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        after = text[match.end() :].lstrip("\n").split("\n", 1)[0]
        skip = SKIP_BEFORE.search(before) or SKIP_AFTER.match(after)
        found.append(
            Block(
                page,
                text[: match.start()].count("\n") + 1,
                match["lang"].lower(),
                match["body"],
                skip["why"] if skip else None,
            )
        )
    return found


BLOCKS = [block for page in PAGES for block in blocks_of(page)]


def test_the_documented_blocks_run_or_say_why_not():
    runnable = [b for b in BLOCKS if b.lang in SHELL + PYTHON]
    running = [b for b in runnable if b.runs]
    skipped = {str(b): b.skip for b in runnable if not b.runs}
    assert len(running) >= EXPECTED_RUN, f"{len(running)} blocks run; skipped: {skipped}"
    assert all(reason.strip() for reason in skipped.values())
    # a marker names the block next to it: none is left dangling before a paragraph
    for page in PAGES:
        text = (REPO / page).read_text(encoding="utf-8")
        markers = len(re.findall(r"<!-- docs-test: skip", text))
        assert markers == sum(1 for b in BLOCKS if b.page == page and b.skip), page
    for page in UNCHECKED:
        assert (REPO / page).exists(), f"{page} is gone: take it off UNCHECKED"


@pytest.fixture(scope="module")
def api_server():
    with FakeOpenAIServer(reply="A") as server:
        yield server


def page_folder(tmp: Path) -> Path:
    """A fresh folder with the files the pages name: a CT slice as scan.dcm and slice.dcm."""
    from medfm_robust_plugin.data.phantoms import phantom

    from .test_image import write_dicom

    hu = phantom("ct", 128, seed=0).image
    for name in ("scan.dcm", "slice.dcm"):
        write_dicom(tmp / name, (hu.astype("int32") + 1024).astype("uint16"), 1.0, -1024.0)
    return tmp


def environment(tmp: Path, server: FakeOpenAIServer) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "GEMINI_", "GOOGLE_", "MEDFM_ROBUST_"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(tmp / "home"),
        MEDFM_ROBUST_CACHE=str(tmp / "cache"),
        OPENAI_API_KEY="sk-docs-test",
        OPENAI_BASE_URL=server.base_url,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MPLBACKEND="Agg",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def run_block(block: Block, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if block.lang in PYTHON:
        script = folder / f"block_{block.line}.py"
        script.write_text(textwrap.dedent(block.code), encoding="utf-8")
        command = [sys.executable, str(script)]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("page", [p for p in PAGES if any(b.runs for b in blocks_of(p))])
def test_a_page_runs_as_written(page, tmp_path, api_server):
    folder = page_folder(tmp_path)
    env = environment(tmp_path, api_server)
    (tmp_path / "home").mkdir()
    for block in blocks_of(page):
        if not block.runs:
            continue
        done = run_block(block, folder, env)
        assert done.returncode == 0, (
            f"{block} failed ({done.returncode}):\n{block.code}\n"
            f"--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        assert "Traceback" not in done.stderr, f"{block}:\n{done.stderr[-3000:]}"


def test_the_baseline_numbers_on_the_segmenters_page_are_what_the_code_gives():
    """docs/segmenters.md states what docs/baseline_numbers.py prints (rerun here)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "docs" / "baseline_numbers.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    page = (REPO / "docs" / "segmenters.md").read_text(encoding="utf-8")
    begin, end = "<!-- baseline-numbers: begin -->", "<!-- baseline-numbers: end -->"
    stated = page[page.index(begin) + len(begin) : page.index(end)].strip()
    assert stated == done.stdout.strip(), "rerun: python docs/baseline_numbers.py --write"


def test_the_readme_counts_the_mini_suite_as_it_is():
    from collections import Counter

    from medfm_robust_plugin.tasks import get_task

    samples = get_task("MedFMRobust-Mini-VQA").load().samples
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"**MedFM-Robust-Mini** is the embedded default: {len(samples)} procedural" in readme
    assert len(set(Counter(s.modality for s in samples).values())) == 1
