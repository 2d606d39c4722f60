"""``report.html``: one self-contained page (figures inlined) with a sortable per-intent table."""

from __future__ import annotations

import base64
import html

from intentbal.evaluation.fallback import FallbackAnalysis, describe_threshold
from intentbal.evaluation.metrics import Report
from intentbal.reports.text import STATUS, fmt, interval, summary_lines

CAPTIONS = {
    "recall_vs_count": "Each intent's recall against its training count; bars are 95% Wilson intervals "
                       "(above 100 intents: points and the mean recall per count bin; the intervals are in the "
                       "table). Few eval examples give wide bars: a recall of 1.0 on 3 examples proves little.",
    "confusions": "Where the errors go: the intents with the lowest recall and the intents they are mistaken "
                  "for (at most 30); the last column counts predictions of any other intent.",
    "pr_rare": "Precision-recall curves (one-vs-rest) of the rarest intents: threshold-free evidence.",
    "fallback": "Recall kept when predictions under a confidence threshold go to the fallback; "
                "the dashed line is the chosen threshold.",
    "training_curve": "The mean training loss of each epoch and, with validation data, the macro recall on it "
                      "after each epoch (dashed, right axis): a loss that does not fall means the model is not "
                      "learning.",
}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1280px;color:#222;
padding:0 1rem}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem}
ul.summary li{margin:.2rem 0}
table{border-collapse:collapse;width:100%;font-size:.8rem}
th,td{padding:.2rem .3rem;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th{white-space:normal;vertical-align:bottom}
td:first-child,td.w{white-space:normal;overflow-wrap:anywhere;text-align:left}
td:first-child{min-width:9rem} td.w{min-width:10rem;font-size:.8rem}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:1rem}
th{cursor:pointer;background:#f3f3f3;position:sticky;top:0} th:hover{background:#e6e6e6}
td:first-child,th:first-child,td.l,th.l,th.w{text-align:left}
tr.fail td{background:#fdecea} tr.at_risk td{background:#fff8e1}
tr.insufficient_evidence td,tr.not_evaluable td{color:#777}
figure{margin:1rem 0} figure img{max-width:100%;border:1px solid #eee} figcaption{font-size:.85rem;color:#555}
.note{font-size:.85rem;color:#555}
"""

SORT_JS = """
document.querySelectorAll('th[data-sort]').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const asc = th.dataset.asc !== 'true'; th.dataset.asc = asc;
  const key = r => { const v = r.cells[col].dataset.v; return v === '' ? NaN : (isNaN(+v) ? v : +v); };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    if (Number.isNaN(x)) return 1; if (Number.isNaN(y)) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
"""

# Filters the rows of the per-intent table as one types (case-insensitive, on the intent name and
# the intents it is confused with); thousands of rows stay searchable without any server.
FILTER_JS = """
const box = document.getElementById('intent-filter'), shown = document.getElementById('intent-count');
box.addEventListener('input', () => {
  const words = box.value.toLowerCase().split(/\\s+/).filter(Boolean); let n = 0;
  for (const row of document.querySelectorAll('#intent-rows tr')) {
    const text = row.dataset.search, hit = words.every(w => text.includes(w));
    row.hidden = !hit; n += hit;
  }
  shown.textContent = n + ' of ' + box.dataset.total + ' intents';
});
"""

COLUMNS = [("intent", "l"), ("tier", "l"), ("train", ""), ("augmented", ""), ("support", ""), ("recall", ""),
           ("95% CI", ""), ("CI width", ""), ("precision", ""), ("F1", ""), ("ROC-AUC", ""), ("avg precision", ""),
           ("confused with", "w"), ("status", "l")]


def render_html(
    report: Report, *, figures: dict[str, bytes], fallback: FallbackAnalysis | None = None,
    title: str = "intentbal report",
) -> str:
    """The whole page as a string; ``figures`` maps a figure name to PNG bytes."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             "<ul class='summary'>", *[f"<li>{html.escape(line)}</li>" for line in summary_lines(report)], "</ul>"]
    if fallback:
        parts.append(_fallback_html(fallback))
    parts.append("<div class='figs'>")
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt='{name}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(CAPTIONS.get(name, name))}</figcaption></figure>")
    parts.append("</div><h2>Intents</h2><p class='note'>Rarest first; click a column to sort, type to filter "
                 "(intent names and confusions; several words must all match). Status: FAIL when "
                 "the whole 95% recall interval lies under the threshold, AT RISK when it straddles it.</p>")
    total = len(report.intents)
    parts.append(f"<p><input type='search' id='intent-filter' data-total='{total}' placeholder='filter intents' "
                 f"aria-label='filter intents'> <span id='intent-count' class='note'>{total} of {total} intents"
                 "</span></p>")
    parts.append(f"{_table(report)}<script>{SORT_JS}{FILTER_JS}</script></body></html>")
    return "\n".join(parts)


def _fallback_html(f: FallbackAnalysis) -> str:
    chosen = describe_threshold(f.chosen_on)
    items = [f"confidence threshold {f.threshold:.2f} ({chosen})",
             f"correct in-scope predictions sent to fallback: {f.correct_sent_to_fallback:.1%}",
             f"in-scope recall after fallback: {f.in_scope_recall:.3f}"]
    if f.oos_recall is not None:
        items.append(f"out-of-scope inputs caught by the fallback: {f.oos_recall:.1%}")
    hit = sorted((p for p in f.per_intent if p["correct_lost"]), key=lambda p: -p["correct_lost"])[:5]
    if hit:
        items.append("hardest hit: " + ", ".join(f"{p['intent']} ({p['correct_lost']:.0%} of its correct answers)"
                                               for p in hit))
    return "<h2>Fallback</h2><ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _table(report: Report) -> str:
    pseudo = any(m.pseudo_count for m in report.intents)  # self-training: what each intent borrowed from the pool
    columns = [*COLUMNS[:4], ("pseudo", ""), *COLUMNS[4:]] if pseudo else COLUMNS
    head = "".join(f"<th class='{align}' data-sort='{i}'>{html.escape(name)}</th>"
                   for i, (name, align) in enumerate(columns))
    rows = []
    for m in report.intents:
        width = None if m.recall_ci is None else m.recall_ci[1] - m.recall_ci[0]
        confused = ", ".join(f"{i} ({n})" for i, n in (m.confused_with or []))
        cells = [(m.intent, m.intent), (m.tier, m.tier), (m.train_count, m.train_count),
                 (m.augmented_count, m.augmented_count), (m.support, m.support), (fmt(m.recall), m.recall),
                 (interval(m.recall_ci), m.recall_ci[0] if m.recall_ci else None), (fmt(width), width),
                 (fmt(m.precision), m.precision), (fmt(m.f1), m.f1), (fmt(m.roc_auc), m.roc_auc),
                 (fmt(m.average_precision), m.average_precision), (confused, confused),
                 (STATUS[m.status], m.status)]
        if pseudo:
            cells.insert(4, (m.pseudo_count, m.pseudo_count))
        tds = "".join(f"<td class='{align}' data-v='{html.escape('' if v is None else str(v))}'>"
                      f"{html.escape(str(shown))}</td>" for (shown, v), (_, align) in zip(cells, columns))
        search = html.escape(f"{m.intent} {confused}".lower())
        rows.append(f"<tr class='{m.status}' data-search='{search}'>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody id='intent-rows'>{''.join(rows)}</tbody></table>"
