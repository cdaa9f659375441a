"""``index.html``: the report as one page to explore, self-contained and offline (``file://``).

Everything the page shows is embedded as one JSON object (runs, conditions per modality, example
images) and drawn by a small hand-written script: no library, no network. The page has

- a leaderboard of every run (task x model): clean score, the paired clean and corrupted means
  and the paired drop, base / medical / attack drops and mCE, sortable by any column;
- filters: task, metric, modality, family, corruption (text), severity;
- a heatmap of the relative drop, corruptions as rows and severities as columns, with its value on
  hover; clicking a row shows that corruption's score-vs-severity curves, one line per model, and
  its example images: the clean image and each severity, with SSIM and the model's answer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from .runs import RunData

THUMB = 112  # px, the example images' longest side


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, 5)


def _scores(mapping: dict[str, Any]) -> dict[str, float | None]:
    return {k: _number(v) for k, v in mapping.items()}


def _run_entry(index: int, run: RunData, mce: dict[str, Any]) -> dict[str, Any]:
    summary = run.summary

    def group(s: Any, name: str) -> dict[str, float | None] | None:
        result = s.by_family.get(name)
        return None if result is None else _scores(result.absolute_drop)

    def headline(s: Any) -> dict[str, Any]:
        return {
            "clean": _scores(s.clean),
            "paired_clean": _scores(s.overall.clean_scores),
            "corrupted": _scores(s.overall.scores),
            "abs_drop": _scores(s.overall.absolute_drop),
            "rel_drop": _scores(s.overall.relative_drop),
            "base_drop": group(s, "base"),
            "medical_drop": group(s, "medical"),
            "attack_drop": group(s, "adversarial"),
            "worst": s.worst,
            "n": s.clean_n,
        }

    return {
        "id": index,
        "task": run.task,
        "model": run.label,
        "metrics": [m.name for m in run.metrics],
        "higher_is_better": {m.name: bool(m.higher_is_better) for m in run.metrics},
        "all": headline(summary),
        "by_modality": {m: headline(s) for m, s in summary.by_modality.items()},
        "mce": mce.get("mce"),
        "rel_mce": mce.get("rel_mce"),
    }


def _conditions(index: int, run: RunData) -> list[dict[str, Any]]:
    rows = []
    scopes = [("all", run.summary), *run.summary.by_modality.items()]
    for modality, summary in scopes:
        for c in summary.conditions:
            rows.append(
                {
                    "run": index,
                    "modality": modality,
                    "corruption": c.corruption,
                    "family": c.family,
                    "severity": c.severity,
                    "score": _scores(c.scores),
                    "clean": _scores(c.clean_scores),
                    "abs_drop": _scores(c.absolute_drop),
                    "rel_drop": _scores(c.relative_drop),
                    "n": c.n,
                    "n_paired": c.n_paired,
                    "note": getattr(c, "note", None),
                }
            )
    return rows


def _answer_text(record: dict[str, Any] | None) -> str | None:
    if record is None:
        return None
    if record.get("error"):
        return f"failed: {str(record['error'])[:120]}"
    prediction = record.get("prediction")
    if isinstance(prediction, dict):  # a mask: its area
        return f"mask of {prediction.get('area', '?')} px"
    return None if prediction is None else str(prediction)[:300]


def _examples(run: RunData, images: dict[str, str], limit_per_modality: int = 1) -> dict[str, Any]:
    """Per modality: one sample's clean image and its images under each (corruption, severity)
    of the run, with the record's SSIM, answer and score (images stored once, by content)."""
    import cv2

    from ..errors import MedFMRobustError
    from ..tasks import Condition, get_task
    from ..views import CorruptedViews

    card = get_task(run.task)
    try:
        samples = {s.id: s for s in card.load(run.config.get("data_root")).samples}
    except MedFMRobustError:
        return {}
    records: dict[tuple[str, str], dict[str, Any]] = {
        (r["sample_id"], r["condition"]): r for r in run.records
    }
    mode = run.config.get("severity_mode") or card.severity_mode
    views = CorruptedViews(global_seed=run.config.get("seed", 0), mode=mode, memory_items=0)
    primary = run.primary

    def store(view: Any) -> str:
        rgb = views.display(view)
        scale = THUMB / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        encoded = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", encoded, [cv2.IMWRITE_JPEG_QUALITY, 85])
        key = hashlib.blake2b(data.tobytes(), digest_size=8).hexdigest()
        images.setdefault(key, base64.b64encode(data.tobytes()).decode())
        return key

    def entry(record: dict[str, Any] | None, image: str | None) -> dict[str, Any]:
        score = (record or {}).get("score") or {}
        return {
            "image": image,
            "ssim": _number((record or {}).get("ssim")),
            "answer": _answer_text(record),
            "score": _number(score.get(primary)),
        }

    examples: dict[str, Any] = {}
    chosen: dict[str, int] = {}
    for record in run.records:
        sample = samples.get(record["sample_id"])
        if record["condition"] != "clean" or sample is None:
            continue
        if chosen.get(sample.modality, 0) >= limit_per_modality:
            continue
        chosen[sample.modality] = chosen.get(sample.modality, 0) + 1
        specs = {spec.name: spec for spec in card.corruptions_for(sample.modality)}
        cells: dict[str, dict[int, Any]] = {}
        for condition in run.summary.by_modality.get(sample.modality, run.summary).conditions:
            spec = specs.get(condition.corruption)
            found = records.get((sample.id, _key(condition.corruption, condition.severity)))
            image = None
            if spec is not None:
                try:
                    view = views.get(
                        sample, Condition(condition.corruption, condition.severity), spec
                    )
                    image = store(view)
                except Exception:  # an example that cannot be drawn is left blank
                    image = None
            cells.setdefault(condition.corruption, {})[condition.severity] = entry(found, image)
        examples[sample.modality] = {
            "sample": sample.id,
            "question": sample.question,
            "reference": sample.answer,
            "clean": entry(record, store(views.get(sample))),
            "cells": cells,
        }
    return examples


def _key(corruption: str, severity: int) -> str:
    from ..metrics.robustness import condition_key

    return condition_key(corruption, severity)


def explore_data(
    runs: Sequence[RunData], mce: dict[tuple[str, str], dict[str, Any]], examples: bool = True
) -> dict[str, Any]:
    """The JSON the page draws from."""
    images: dict[str, str] = {}
    data = {
        "runs": [],
        "conditions": [],
        "examples": {},
        "images": images,
    }
    for index, run in enumerate(runs):
        data["runs"].append(_run_entry(index, run, mce.get((run.task, run.label), {})))
        data["conditions"] += _conditions(index, run)
        if examples:
            data["examples"][str(index)] = _examples(run, images)
    return data


def render_explorer(data: dict[str, Any], pairing: str) -> str:
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        PAGE.replace("__PAIRING__", pairing)
        .replace("__DATA__", payload)
        .replace("__SCRIPT__", SCRIPT)
        .replace("__STYLE__", STYLE)
    )


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.2rem auto;max-width:1400px;
 color:#1b1b1b;padding:0 1rem}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
p.note{color:#555;font-size:.85rem;max-width:70rem}
#filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;background:#f4f5f7;padding:.6rem;
 border-radius:6px;position:sticky;top:0;z-index:2}
#filters label{font-size:.75rem;color:#444;display:flex;flex-direction:column;gap:.15rem}
select,input{font-size:.85rem;padding:.15rem}
table{border-collapse:collapse;font-size:.8rem}
th,td{border-bottom:1px solid #e3e3e3;padding:.25rem .45rem;text-align:right;white-space:nowrap}
th{background:#fafafa;cursor:pointer;user-select:none;position:sticky;top:0}
td.text,th.text{text-align:left}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
#layout{display:grid;grid-template-columns:minmax(360px,520px) 1fr;gap:1.2rem;align-items:start}
#heatmap td.cell{width:3.2rem;cursor:pointer;color:#111;font-variant-numeric:tabular-nums}
#heatmap td.cell:hover{outline:2px solid #333}
#heatmap tr.selected td.name{font-weight:700}
#heatmap-wrap{max-height:75vh;overflow:auto;border:1px solid #eee}
#tooltip{position:fixed;pointer-events:none;background:#222;color:#fff;font-size:.75rem;
 padding:.3rem .45rem;border-radius:4px;display:none;z-index:5;max-width:22rem}
.examples{display:flex;flex-wrap:wrap;gap:.6rem}
.example{font-size:.72rem;width:128px}.example img{width:112px;image-rendering:auto;
 border:1px solid #ccc;display:block}
.example .answer{color:#333;word-break:break-word}
.example.current img{outline:3px solid #d62728}.example.current b{color:#d62728}
svg text{font-size:10px;fill:#333}
.legend{font-size:.75rem}
.muted{color:#777}
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MedFM-Robust: explore</title><style>__STYLE__</style></head>
<body>
<h1>MedFM-Robust</h1>
<p class="note">__PAIRING__</p>
<div id="filters">
 <label>Task<select id="f-task"></select></label>
 <label>Metric<select id="f-metric"></select></label>
 <label>Modality<select id="f-modality"></select></label>
 <label>Family<select id="f-family"></select></label>
 <label>Corruption<input id="f-corruption" placeholder="e.g. noise" size="12"></label>
 <label>Severity<select id="f-severity"></select></label>
 <label>Heatmap model<select id="f-model"></select></label>
</div>
<h2>Leaderboard</h2>
<div style="overflow:auto"><table id="leaderboard"><thead></thead><tbody></tbody></table></div>
<div id="layout">
 <div><h2>Relative drop by corruption and severity</h2>
  <p class="note" id="heatmap-note"></p>
  <div id="heatmap-wrap"><table id="heatmap"><thead></thead><tbody></tbody></table></div></div>
 <div><h2 id="detail-title">Pick a corruption</h2>
  <div id="curves"></div>
  <h2>Examples</h2><p class="note" id="example-note"></p>
  <div class="examples" id="examples"></div></div>
</div>
<div id="tooltip"></div>
<script id="medfm-data" type="application/json">__DATA__</script>
<script>__SCRIPT__</script>
</body></html>
"""

SCRIPT = r"""
"use strict";
const DATA = JSON.parse(document.getElementById("medfm-data").textContent);
const $ = (id) => document.getElementById(id);
const state = {task: "all", metric: null, modality: "all", family: "all", corruption: "",
  severity: "all", model: null, selected: null, selectedSeverity: null, sort: {key: "rel_drop", dir: -1}};
const esc = (t) => String(t ?? "").replace(/[<>&"]/g, (c) => ({"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}[c]));
const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v)) ? "-" : Number(v).toFixed(d);
function options(select, values, labels) {
  select.innerHTML = "";
  values.forEach((v, i) => { const o = document.createElement("option"); o.value = v;
    o.textContent = labels ? labels[i] : v; select.appendChild(o); });
}
const tasks = [...new Set(DATA.runs.map((r) => r.task))];
function runsOfTask() { return DATA.runs.filter((r) => state.task === "all" || r.task === state.task); }
function metricOf(run) { return run.metrics.includes(state.metric) ? state.metric : run.metrics[0]; }
function heatRun() { return DATA.runs[state.model]; }
function familyGroup(f) { return f === "natural" ? "base" : f === "adversarial" ? "adversarial" : "medical"; }
function setupFilters() {
  options($("f-task"), ["all", ...tasks], ["all tasks", ...tasks]);
  $("f-task").onchange = (e) => { state.task = e.target.value; state.selected = null; refreshChoices(); draw(); };
  $("f-metric").onchange = (e) => { state.metric = e.target.value; draw(); };
  $("f-modality").onchange = (e) => { state.modality = e.target.value; draw(); };
  $("f-family").onchange = (e) => { state.family = e.target.value; draw(); };
  $("f-corruption").oninput = (e) => { state.corruption = e.target.value.trim().toLowerCase(); draw(); };
  $("f-severity").onchange = (e) => { state.severity = e.target.value; draw(); };
  $("f-model").onchange = (e) => { state.model = Number(e.target.value); draw(); };
  refreshChoices();
}
function refreshChoices() {
  const runs = runsOfTask();
  const metrics = [...new Set(runs.flatMap((r) => r.metrics))];
  options($("f-metric"), metrics); state.metric = metrics[0];
  const conds = DATA.conditions.filter((c) => runs.some((r) => r.id === c.run));
  const mods = [...new Set(conds.map((c) => c.modality).filter((m) => m !== "all"))].sort();
  options($("f-modality"), ["all", ...mods]); state.modality = "all";
  const fams = [...new Set(conds.map((c) => c.family).filter(Boolean))].sort();
  options($("f-family"), ["all", "base", "medical", "adversarial", ...fams],
    ["all", "base (natural)", "medical", "adversarial", ...fams.map((f) => "family: " + f)]);
  state.family = "all";
  const sevs = [...new Set(conds.map((c) => c.severity))].sort((a, b) => a - b);
  options($("f-severity"), ["all", ...sevs]); state.severity = "all";
  options($("f-model"), runs.map((r) => r.id), runs.map((r) => state.task === "all" ? `${r.task} · ${r.model}` : r.model));
  state.model = runs[0].id;
}
function keep(c) {
  if (c.modality !== state.modality) return false;
  if (state.family !== "all" && c.family !== state.family && familyGroup(c.family) !== state.family) return false;
  if (state.corruption && !c.corruption.toLowerCase().includes(state.corruption)) return false;
  if (state.severity !== "all" && String(c.severity) !== state.severity) return false;
  return true;
}
const COLUMNS = [["task", "Task", "text"], ["model", "Model", "text"], ["metric", "Metric", "text"], ["clean", "Clean"], ["paired_clean", "Paired clean"],
  ["corrupted", "Corrupted"], ["abs_drop", "Abs. drop"], ["rel_drop", "Rel. drop"],
  ["base_drop", "Base drop"], ["medical_drop", "Medical drop"], ["attack_drop", "Attack drop"],
  ["mce", "mCE"], ["rel_mce", "Rel. mCE"], ["n", "Clean n"]];
function leaderboardRows() {
  const filtered = state.family !== "all" || state.corruption || state.severity !== "all";
  return runsOfTask().map((r) => {
    const m = metricOf(r);
    const h = state.modality === "all" ? r.all : r.by_modality[state.modality];
    if (!h) return null;
    const row = {id: r.id, task: r.task, model: r.model, metric: m, n: h.n, clean: h.clean[m],
      mce: r.mce ? r.mce[m] : null, rel_mce: r.rel_mce ? r.rel_mce[m] : null,
      base_drop: h.base_drop ? h.base_drop[m] : null, medical_drop: h.medical_drop ? h.medical_drop[m] : null,
      attack_drop: h.attack_drop ? h.attack_drop[m] : null};
    if (!filtered) {
      Object.assign(row, {paired_clean: h.paired_clean[m], corrupted: h.corrupted[m],
        abs_drop: h.abs_drop[m], rel_drop: h.rel_drop[m]});
    } else {  // the means over the conditions the filters keep
      const cs = DATA.conditions.filter((c) => c.run === r.id && keep(c) && c.n_paired > 0);
      const mean = (f) => cs.length ? cs.reduce((s, c) => s + (c[f][m] ?? 0), 0) / cs.length : null;
      row.paired_clean = mean("clean"); row.corrupted = mean("score"); row.abs_drop = mean("abs_drop");
      row.rel_drop = row.paired_clean ? row.abs_drop / Math.abs(row.paired_clean) : null;
    }
    return row;
  }).filter(Boolean);
}
function drawLeaderboard() {
  const table = $("leaderboard");
  table.tHead.innerHTML = "<tr>" + COLUMNS.map(([k, label, cls]) =>
    `<th data-key="${k}" class="${cls || ""} ${state.sort.key === k ? (state.sort.dir > 0 ? "sorted-asc" : "sorted-desc") : ""}">${label}</th>`).join("") + "</tr>";
  table.tHead.querySelectorAll("th").forEach((th) => th.onclick = () => {
    const k = th.dataset.key;
    state.sort = {key: k, dir: state.sort.key === k ? -state.sort.dir : (k === "model" ? 1 : -1)};
    drawLeaderboard();
  });
  const rows = leaderboardRows();
  const {key, dir} = state.sort;
  rows.sort((a, b) => {
    const x = a[key], y = b[key];
    if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
    return (typeof x === "string" ? x.localeCompare(y) : x - y) * dir;
  });
  table.tBodies[0].innerHTML = rows.map((r) => "<tr>" + COLUMNS.map(([k, , cls]) =>
    `<td class="${cls || ""}" data-key="${k}">${cls ? esc(r[k]) : (k === "n" ? (r[k] ?? "-") : fmt(r[k]))}</td>`).join("") + "</tr>").join("");
}
function colour(v, limit) {
  if (v === null || v === undefined) return "#f2f2f2";
  const t = Math.max(-1, Math.min(1, v / (limit || 1)));
  const a = Math.abs(t);
  return t >= 0 ? `rgb(255,${Math.round(255 - 170 * a)},${Math.round(255 - 190 * a)})`
    : `rgb(${Math.round(255 - 190 * a)},${Math.round(255 - 120 * a)},255)`;
}
function drawHeatmap() {
  const m = metricOf(heatRun());
  const cs = DATA.conditions.filter((c) => c.run === state.model && keep(c));
  const names = [...new Set(cs.map((c) => c.corruption))].sort();
  const sevs = [...new Set(cs.map((c) => c.severity))].sort((a, b) => a - b);
  const limit = Math.max(0.05, ...cs.map((c) => Math.abs(c.rel_drop[m] ?? 0)));
  const table = $("heatmap");
  table.tHead.innerHTML = "<tr><th class='text'>Corruption</th>" + sevs.map((s) => `<th>${s}</th>`).join("") + "</tr>";
  table.tBodies[0].innerHTML = names.map((name) => {
    const cells = sevs.map((s) => {
      const c = cs.find((x) => x.corruption === name && x.severity === s);
      if (!c) return "<td class='cell muted'></td>";
      const v = c.rel_drop[m];
      return `<td class="cell" data-c="${esc(name)}" data-s="${s}" style="background:${colour(v, limit)}">${v === null ? "n/p" : fmt(v, 2)}</td>`;
    }).join("");
    const family = (cs.find((x) => x.corruption === name) || {}).family || "";
    return `<tr data-c="${esc(name)}" class="${state.selected === name ? "selected" : ""}"><td class="text name">${esc(name)} <span class="muted">${esc(family)}</span></td>${cells}</tr>`;
  }).join("");
  $("heatmap-note").textContent = `${names.length} corruptions, relative drop in ${m} (red: worse, blue: better; n/p: no paired clean samples). Hover for values, click a row for its curves and images.`;
  table.querySelectorAll("tr[data-c]").forEach((tr) => tr.onclick = (e) => {
    const cell = e.target.closest("td.cell[data-s]");
    state.selected = tr.dataset.c; state.selectedSeverity = cell ? Number(cell.dataset.s) : null; draw();
  });
  table.querySelectorAll("td.cell[data-c]").forEach((td) => {
    td.onmousemove = (e) => {
      const c = cs.find((x) => x.corruption === td.dataset.c && String(x.severity) === td.dataset.s);
      const tip = $("tooltip");
      tip.style.display = "block"; tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px";
      tip.textContent = `${c.corruption}, severity ${c.severity}: ${m} ${fmt(c.score[m])} vs paired clean ${fmt(c.clean[m])}; drop ${fmt(c.abs_drop[m])} (relative ${fmt(c.rel_drop[m])}); n ${c.n}, paired ${c.n_paired}${c.note ? "; " + c.note : ""}`;
    };
    td.onmouseleave = () => { $("tooltip").style.display = "none"; };
  });
}
function drawCurves() {
  const name = state.selected, m = metricOf(heatRun());
  const box = $("curves");
  if (!name) { box.innerHTML = "<p class='note'>Click a row of the heatmap.</p>"; return; }
  $("detail-title").textContent = name;
  const runs = DATA.runs.filter((r) => r.task === heatRun().task);  // every model of the task
  const W = 460, H = 220, L = 40, B = 28;
  const series = runs.map((r) => {
    const cs = DATA.conditions.filter((c) => c.run === r.id && c.modality === state.modality && c.corruption === name)
      .sort((a, b) => a.severity - b.severity);
    if (!cs.length) return null;
    const clean = cs.find((c) => c.n_paired > 0);
    return {model: r.model, points: [[0, clean ? clean.clean[m] : null], ...cs.map((c) => [c.severity, c.score[m]])]};
  }).filter(Boolean);
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v !== null);
  const xmax = Math.max(1, ...xs), ymin = Math.min(0, ...ys), ymax = Math.max(1e-9, ...ys);
  const X = (x) => L + (W - L - 10) * x / xmax, Y = (y) => H - B - (H - B - 10) * (y - ymin) / ((ymax - ymin) || 1);
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
  let svg = `<svg width="${W}" height="${H}" role="img" aria-label="${name}: ${m} against severity">`;
  svg += `<line x1="${L}" y1="${H - B}" x2="${W - 10}" y2="${H - B}" stroke="#999"/><line x1="${L}" y1="10" x2="${L}" y2="${H - B}" stroke="#999"/>`;
  [...new Set(xs)].sort((a, b) => a - b).forEach((x) => { svg += `<text x="${X(x)}" y="${H - B + 14}" text-anchor="middle">${x}</text>`; });
  [ymin, (ymin + ymax) / 2, ymax].forEach((y) => { svg += `<text x="${L - 4}" y="${Y(y) + 3}" text-anchor="end">${fmt(y, 2)}</text>`; });
  svg += `<text x="${(W + L) / 2}" y="${H - 2}" text-anchor="middle">${name.match(/^(fgsm|pgd)$/) ? "epsilon (of 255), 0 = clean" : "severity, 0 = clean"}</text>`;
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p[1] !== null);
    svg += `<polyline fill="none" stroke="${palette[i % palette.length]}" stroke-width="2" points="${pts.map((p) => X(p[0]) + "," + Y(p[1])).join(" ")}"/>`;
    pts.forEach((p) => { svg += `<circle cx="${X(p[0])}" cy="${Y(p[1])}" r="3" fill="${palette[i % palette.length]}"><title>${esc(s.model)}: ${fmt(p[1])} at ${p[0]}</title></circle>`; });
  });
  svg += "</svg>";
  const legend = series.map((s, i) => `<span style="color:${palette[i % palette.length]}">&#9632;</span> ${esc(s.model)}`).join(" &nbsp; ");
  box.innerHTML = svg + `<div class="legend">${legend}</div>`;
}
function drawExamples() {
  const box = $("examples"), name = state.selected;
  box.innerHTML = "";
  if (!name) { $("example-note").textContent = ""; return; }
  const perModality = (DATA.examples[String(state.model)] || {});
  const mods = state.modality === "all" ? Object.keys(perModality) : [state.modality];
  const ex = mods.map((k) => perModality[k]).find((e) => e && e.cells[name]);
  if (!ex) { $("example-note").textContent = name.match(/^(fgsm|pgd)$/) ? "Attacked images depend on the model's gradients and are not kept." : "No example image for this corruption here."; return; }
  $("example-note").textContent = `Sample ${ex.sample}` + (ex.question ? `: ${ex.question}` : "") + (ex.reference ? ` (reference: ${String(ex.reference).slice(0, 140)})` : "");
  const card = (title, e, severity) => {
    const current = severity !== undefined && severity === state.selectedSeverity ? " current" : "";
    const img = e.image ? `<img alt="${esc(title)}" src="data:image/jpeg;base64,${DATA.images[e.image]}">` : "<div class='muted'>no image</div>";
    return `<div class="example${current}" data-severity="${severity ?? 0}">${img}<b>${esc(title)}</b><br>SSIM ${fmt(e.ssim)} &middot; score ${fmt(e.score, 2)}<div class="answer">${esc(e.answer || "-")}</div></div>`;
  };
  let html = card("clean", ex.clean);
  Object.keys(ex.cells[name]).map(Number).sort((a, b) => a - b).forEach((s) => { html += card(`${name} ${s}`, ex.cells[name][s], s); });
  box.innerHTML = html;
}
function draw() { drawLeaderboard(); drawHeatmap(); drawCurves(); drawExamples(); }
setupFilters();
draw();
"""
