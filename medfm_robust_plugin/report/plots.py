"""Report figures (PNG): score against severity per corruption, a corruption x severity heatmap of
the relative drop, and a model comparison of clean against corrupted scores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ..attacks import is_attack
from ..metrics.robustness import NO_PAIRED
from .runs import RunData


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def score_vs_severity(runs: Sequence[RunData], path: Path) -> Path:
    """One panel per corruption of the first run: each model's score at severities 0 (clean) to 5."""
    plt = _pyplot()
    corruptions = [c.corruption for c in runs[0].summary.corruptions]
    metric = runs[0].primary
    columns = min(6, max(1, len(corruptions)))
    rows = max(1, math.ceil(len(corruptions) / columns))
    # constrained layout keeps the figure's title clear of the panels' titles
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(2.6 * columns, 2.2 * rows + 0.4),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for index, name in enumerate(corruptions):
        ax = axes[index // columns][index % columns]
        unpaired = True
        for run in runs:
            levels = [c for c in run.summary.conditions if c.corruption == name]
            if not levels:
                continue
            xs = [0] + [c.severity for c in levels]
            # severity 0 is the clean score of the samples this corruption applies to
            clean = next((c.clean_scores.get(metric) for c in levels if c.n_paired), None)
            unpaired = unpaired and clean is None
            ys = [clean] + [c.scores.get(metric) for c in levels]
            ax.plot(
                xs,
                [math.nan if y is None else y for y in ys],
                marker="o",
                markersize=3,
                label=run.label,
            )
        if unpaired:
            ax.text(
                0.5,
                0.5,
                "no paired clean samples",
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=7,
                color="0.4",
            )
        if is_attack(name):  # an attack's strength is its epsilon, in pixel levels of 255
            epsilons = sorted(
                {c.severity for c in runs[0].summary.conditions if c.corruption == name}
            )
            ax.set_title(f"{name} (epsilon of 255)", fontsize=8)
            ax.set_xticks([0, *epsilons])
        else:
            ax.set_title(name, fontsize=8)
            ax.set_xticks(range(0, 6))
        ax.tick_params(labelsize=7)
    for index in range(len(corruptions), rows * columns):
        axes[index // columns][index % columns].axis("off")
    axes[0][0].set_ylabel(metric, fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if len(runs) > 1 and handles:
        fig.legend(handles, labels, loc="lower right", fontsize=8)
    fig.suptitle(f"{runs[0].task}: {metric} against severity (0 = clean)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def drop_heatmap(run: RunData, path: Path) -> Path:
    """Relative drop of the primary metric: severities (rows) by corruptions (columns)."""
    plt = _pyplot()
    import numpy as np

    metric = run.primary
    # attacks have epsilons, not severities: they are in the tables and the severity plot
    corruptions = [c.corruption for c in run.summary.corruptions if not is_attack(c.corruption)]
    severities = sorted({c.severity for c in run.summary.conditions if c.corruption in corruptions})
    grid = np.full((len(severities), len(corruptions)), np.nan)
    for c in run.summary.conditions:
        value = c.relative_drop.get(metric)
        if value is not None and c.corruption in corruptions:
            grid[severities.index(c.severity), corruptions.index(c.corruption)] = value
    fig, ax = plt.subplots(figsize=(2.0 + 0.22 * len(corruptions), 1.6 + 0.3 * len(severities)))
    limit = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_yticks(range(len(severities)), [str(s) for s in severities], fontsize=8)
    ax.set_xticks(range(len(corruptions)), corruptions, fontsize=7, rotation=70, ha="right")
    ax.set_ylabel("severity", fontsize=8)
    for c in run.summary.conditions:
        if c.note == NO_PAIRED and c.corruption in corruptions:
            ax.text(
                corruptions.index(c.corruption),
                severities.index(c.severity),
                "n/p",
                ha="center",
                va="center",
                fontsize=6,
                color="0.3",
            )
    if any(c.note == NO_PAIRED for c in run.summary.conditions):
        ax.set_xlabel("n/p: no paired clean samples, no drop", fontsize=7)
    ax.set_title(f"{run.task}, {run.label}: relative drop in {metric} (red = worse)", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.9, pad=0.01).ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def model_comparison(runs: Sequence[RunData], path: Path) -> Path:
    """Clean, base-corruption and medical-corruption scores of each model (primary metric)."""
    plt = _pyplot()
    import numpy as np

    metric = runs[0].primary
    groups = [("clean", None), ("base corruptions", "base"), ("medical corruptions", "medical")]
    if any("adversarial" in run.summary.by_family for run in runs):
        groups.append(("attacks", "adversarial"))
    width = 0.8 / len(groups)
    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * len(runs), 3.0))
    x = np.arange(len(runs))
    for k, (label, group) in enumerate(groups):
        values = []
        for run in runs:
            if group is None:
                values.append(run.summary.clean.get(metric, np.nan))
            else:
                result = run.summary.by_family.get(group)
                values.append(result.scores.get(metric, np.nan) if result else np.nan)
        ax.bar(x + (k - 1) * width, values, width, label=label)
    ax.set_xticks(x, [run.label for run in runs], fontsize=8, rotation=15)
    ax.set_ylabel(metric, fontsize=8)
    ax.set_title(f"{runs[0].task}: clean against corrupted", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
