"""The demo's report: one self-contained HTML page (styles inline, no script, nothing
fetched) with the numbers the command prints, laid out to be read."""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

from settlement.demo.summary import Summary
from settlement.money import format_minor

STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
main{max-width:980px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 8px}
.sub{color:#5a6474;margin:0 0 18px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 14px}
.card b{display:block;font-size:22px}.card span{color:#5a6474;font-size:13px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7;border-radius:8px}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #eceff3;vertical-align:top}
th{background:#f0f2f5;font-weight:600;font-size:13px}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#11693a;font-weight:600}.bad{color:#b3261e;font-weight:600}
.bar{display:inline-block;height:10px;background:#4a6fd1;border-radius:3px;vertical-align:middle}
.tag{display:inline-block;padding:1px 7px;border-radius:10px;background:#eef1f6;font-size:12px;margin:1px}
code{font-size:13px;word-break:break-all}footer{margin-top:32px;color:#5a6474;font-size:13px}
"""


def write_report(path: Path, summary: Summary) -> Path:
    path.write_text(render(summary), encoding="utf-8")
    return path


def render(s: Summary) -> str:
    total_payments = sum(r.payments for r in s.rails)
    open_exceptions = sum(n for k, n in s.exceptions.items() if "(resolved)" not in k)
    verified = bool(s.export.get("verified"))
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
        "<title>Settlement demo: a marketplace day</title>", f"<style>{STYLE}</style></head><body><main>",
        "<h1>A marketplace day, settled</h1>",
        f"<p class=\"sub\">{escape(s.database)} &middot; seed {s.seed} &middot; "
        f"{escape(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))}</p>",
        "<section class=\"cards\" aria-label=\"Key figures\">",
        _card(str(total_payments), "payments taken"),
        _card(str(s.ledger_entries), "ledger entries"),
        _card(str(open_exceptions), "exceptions left for people"),
        _card("balanced" if s.balanced else "NOT balanced", "trial balance, every currency",
              "ok" if s.balanced else "bad"),
        _card("verified" if verified else "NOT verified", "ledger export, offline", "ok" if verified else "bad"),
        "</section>",
        *_rails(s, total_payments), *_volumes(s), *_reconciliation(s), *_exceptions(s), *_trial_balance(s),
        *_export(s), *_notes(s),
        "<footer>Written by <code>settlement demo</code>. The signing key that signed this journal's "
        "checkpoints is a demo key, generated for this run only.</footer></main></body></html>",
    ]
    return "\n".join(parts)


def _card(value: str, label: str, css: str = "") -> str:
    klass = f" class=\"{css}\"" if css else ""
    return f"<div class=\"card\"><b{klass}>{escape(value)}</b><span>{escape(label)}</span></div>"


def _money(minor: int, currency: str) -> str:
    return f"{format_minor(minor, currency)} {currency}"


def _rails(s: Summary, total: int) -> list[str]:
    rows = []
    for r in s.rails:
        width = 0 if not total else max(2, r.payments * 220 // total)
        states = " ".join(f"<span class=\"tag\">{escape(k.replace('_', ' '))} {n}</span>"
                          for k, n in r.states.items())
        rows.append(f"<tr><td>{escape(r.rail)}</td><td class=\"n\">{r.payments}</td>"
                    f"<td><span class=\"bar\" style=\"width:{width}px\"></span></td><td>{states}</td></tr>")
    return ["<h2>Payments per rail</h2>", "<table><thead><tr><th>rail</th><th class=\"n\">payments</th>"
            "<th>share</th><th>states</th></tr></thead><tbody>", *rows, "</tbody></table>"]


def _volumes(s: Summary) -> list[str]:
    rows = [f"<tr><td>{v.currency}</td><td class=\"n\">{v.payments}</td>"
            f"<td class=\"n\">{_money(v.authorized, v.currency)}</td><td class=\"n\">{_money(v.captured, v.currency)}"
            f"</td><td class=\"n\">{_money(v.refunded, v.currency)}</td></tr>" for v in s.volumes]
    payout = s.payout
    extra = (f"<p>Payout: {escape(str(payout.get('amount')))} {escape(str(payout.get('currency')))}, "
             f"{escape(str(payout.get('state')))}.</p>") if payout else ""
    return ["<h2>Volumes per currency</h2>", "<table><thead><tr><th>currency</th><th class=\"n\">payments</th>"
            "<th class=\"n\">authorized</th><th class=\"n\">captured</th><th class=\"n\">refunded</th></tr></thead>"
            "<tbody>", *rows, "</tbody></table>", extra]


def _reconciliation(s: Summary) -> list[str]:
    rows = []
    for r in s.reconciliations:
        outcomes = " ".join(f"<span class=\"tag\">{escape(k.replace('_', ' '))} {n}</span>"
                            for k, n in sorted(r.outcomes.items()))
        expected = " ".join(f"<span class=\"tag\">{escape(k.replace('_', ' '))} {n}</span>"
                            for k, n in sorted(r.expected.items())) or "none"
        verdict = ("<span class=\"ok\">as injected</span>" if r.as_injected
                   else f"<span class=\"bad\">{escape(r.error or 'differs from what was injected')}</span>")
        rows.append(f"<tr><td>{escape(r.rail)}</td><td><code>{escape(r.filename)}</code></td>"
                    f"<td>{escape(r.status)}</td><td>{outcomes}</td><td>{expected}</td><td>{verdict}</td></tr>")
    return ["<h2>Reconciliation</h2>",
            "<p>Each rail's simulator wrote its settlement file with a known list of discrepancies; the bank "
            "statement confirms each rail's net settlement. Finance reconciled every file through the API.</p>",
            "<table><thead><tr><th>rail</th><th>file</th><th>run</th><th>outcomes</th><th>injected</th>"
            "<th>check</th></tr></thead><tbody>", *rows, "</tbody></table>"]


def _exceptions(s: Summary) -> list[str]:
    rows = [f"<tr><td>{escape(k.replace('_', ' '))}</td><td class=\"n\">{n}</td></tr>"
            for k, n in s.exceptions.items()] or ["<tr><td colspan=\"2\">none</td></tr>"]
    return ["<h2>Exceptions left for people</h2>",
            "<p>What reconciliation could not book waits in the exceptions queue (the console's Exceptions page, "
            "or <code>settlement reconcile exceptions</code>): match by hand, write off (a second person approves "
            "above the threshold) or ignore, always with a reason.</p>",
            "<table><thead><tr><th>kind</th><th class=\"n\">count</th></tr></thead><tbody>", *rows,
            "</tbody></table>"]


def _trial_balance(s: Summary) -> list[str]:
    rows = []
    for t in s.trial_balance:
        css = "ok" if t.difference == 0 else "bad"
        rows.append(f"<tr><td>{t.currency}</td><td class=\"n\">{_money(t.debits, t.currency)}</td>"
                    f"<td class=\"n\">{_money(t.credits, t.currency)}</td>"
                    f"<td class=\"n {css}\">{_money(t.difference, t.currency)}</td>"
                    f"<td class=\"n\">{_money(t.pending_debits, t.currency)}</td></tr>")
    return ["<h2>Trial balance</h2>", "<p>Posted debits and credits of every ledger account, per currency: each "
            "currency sums to zero.</p>",
            "<table><thead><tr><th>currency</th><th class=\"n\">debits</th><th class=\"n\">credits</th>"
            "<th class=\"n\">difference</th><th class=\"n\">on hold</th></tr></thead><tbody>", *rows,
            "</tbody></table>"]


def _export(s: Summary) -> list[str]:
    e = s.export
    if not e:
        return []
    verdict = "<span class=\"ok\">verified</span>" if e.get("verified") else "<span class=\"bad\">NOT verified</span>"
    failures = "".join(f"<li><code>{escape(str(f))}</code></li>" for f in e.get("failures", []))
    return ["<h2>Audit export</h2>",
            f"<p>{verdict}: {e.get('entries')} entries and {e.get('postings')} postings, anchored to the signed "
            f"checkpoint of tree size {e.get('tree_size')} (root <code>{escape(str(e.get('root_hash')))}</code>). "
            f"Archive <code>{escape(str(e.get('archive')))}</code>; check it again with "
            f"<code>settlement verify {escape(str(e.get('archive')))} --public-key "
            f"{escape(str(e.get('public_key')))}</code>.</p>", f"<ul>{failures}</ul>" if failures else ""]


def _notes(s: Summary) -> list[str]:
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in s.timings.items())
    notes = "".join(f"<li>{escape(n)}</li>" for n in s.notes)
    return ["<h2>How it ran</h2>", f"<p>{escape(timing)}</p>", f"<ul>{notes}</ul>" if notes else ""]
