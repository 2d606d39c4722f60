"""``report.html`` on a laptop screen: the per-intent table fits 1200 pixels, status column included."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

# long intent names, as BANKING77 has them, and every optional column (pseudo, ROC-AUC)
NAMES = ["balance_not_updated_after_bank_transfer", "card_payment_not_recognised", "transfer_not_received_by_recipient",
         "wrong_exchange_rate_for_cash_withdrawal", "top_up_by_bank_transfer_charge", "topping_up_by_card",
         "declined_cash_withdrawal", "a"]
PROBE = """<script>window.addEventListener('load', () => {
  const table = document.querySelector('table'), status = table.querySelector('thead th:last-child');
  document.title = 'table ' + Math.round(table.getBoundingClientRect().right) + ' status '
    + Math.round(status.getBoundingClientRect().right) + ' page ' + document.documentElement.scrollWidth
    + ' window ' + window.innerWidth + ' ' + status.textContent;
});</script>"""


def test_the_intent_table_fits_a_1200_pixel_window(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from intentbal.evaluation.metrics import evaluate_predictions
    from intentbal.reports.html import render_html

    rng = np.random.default_rng(0)
    gold = [n for n in NAMES for _ in range(12)]
    predicted = [g if rng.random() < 0.7 else NAMES[rng.integers(len(NAMES))] for g in gold]
    report = evaluate_predictions(
        gold, predicted, train_counts={n: 3 + 40 * i for i, n in enumerate(NAMES)},
        augmented_counts={n: 30 + 40 * i for i, n in enumerate(NAMES)}, pseudo_counts=dict.fromkeys(NAMES, 5),
        probabilities=rng.dirichlet(np.ones(len(NAMES)), size=len(gold)), prob_intents=NAMES)
    page = tmp_path / "report.html"
    page.write_text(render_html(report, figures={}).replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900", "--dump-dom",
                          page.as_uri()], check=True, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"<title>table (\d+) status (\d+) page (\d+) window (\d+) (\w+)</title>", dom)
    assert found, dom[:500]
    table, status, page_width, window = map(int, found.groups()[:4])
    assert found[5] == "status"
    assert window == 1200 and table <= window and status <= window and page_width <= window, found[0]
