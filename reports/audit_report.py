"""The audit's HTML report (``reports.audit``): one self-contained page (inline CSS, the plot as an inline PNG).

``write_report(DIR, audit, drift_json, args)`` writes ``DIR/report.html`` with

* the verdict table of ``conformance.audit`` (one row per concern);
* the error-per-step plot: the audited implementation against the exact
  trajectory on ``reports.drift_study``'s fixed noisy quadratic, ``--drift-steps``
  steps, one panel per dtype (needs matplotlib; the page says so without it);
* the drift table of the run's drift report (``DIR/drift.json``: per optimizer ×
  path × dtype, the ULP errors of the Hypothesis cases);
* every failing test's message and its ``Reproduce with:`` block.

The JSON files beside it carry the same data for machines.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import os
import sys



def _fmt(x) -> str:
    """A number of the drift report's JSON (a float, or "inf"/"nan" as strings) in 3 significant digits."""
    if x is None:
        return "-"
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")) or x == 0:
        return {0.0: "0"}.get(x, str(x))
    return f"{x:.2e}" if abs(x) >= 1e4 or abs(x) < 1e-3 else f"{x:.3g}"


def _pct(x) -> str:
    return "0" if not x else f"{100 * x:.1f}%" if x >= 0.001 else "<0.1%"

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430; margin: 0;
       background: #f5f6f8; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; min-height: 100vh; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e3e6ea; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 18px 0 6px; word-break: break-all; }
.meta { color: #5b6472; margin: 0 0 14px; }
.headline { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin: 12px 0; }
.headline.ok { background: #e7f6ec; border: 1px solid #9fd8b0; }
.headline.bad { background: #fdecec; border: 1px solid #f0a8a8; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eceef1; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px;
         white-space: nowrap; }
.conforms { background: #d8f1e0; color: #17602f; }
.departs { background: #fbd5d5; color: #8a1c1c; }
.known { background: #fff0c2; color: #6b5000; }
.not-checked { background: #e8eaee; color: #4a5260; }
.detail { color: #4a5260; }
pre { background: #f6f8fa; border: 1px solid #e3e6ea; border-radius: 4px; padding: 8px 10px; font-size: 12px;
      white-space: pre-wrap; overflow-wrap: anywhere; }
td.concern { white-space: nowrap; }
img.plot { max-width: 100%; border: 1px solid #e3e6ea; }
.note { color: #5b6472; font-size: 12px; }
"""

_BADGE = {"conforms": "conforms", "departs": "departs", "known deviation": "known", "not checked": "not-checked"}


def _e(x) -> str:
    return html.escape(str(x))


def _verdict_table(rows: list) -> str:
    out = ["<table><tr><th>concern</th><th>verdict</th><th>what it means / detail</th></tr>"]
    for r in rows:
        detail = r.get("meaning", "")
        if r["verdict"] in ("not checked", "known deviation"):
            detail = r.get("why", "")
        elif r["verdict"] == "departs":
            lines = [l.strip() for l in r["first_departure"].splitlines()]
            first = next((l for l in lines if l.startswith("first departure:")), " ".join(lines[:2]))
            detail = f"{r['departures']} failing test(s); {first}"
        if r.get("note"):
            detail += f" ({r['note']})"
        out.append(f"<tr><td class='concern'>{_e(r['label'])}</td><td><span class='badge {_BADGE[r['verdict']]}'>"
                   f"{_e(r['verdict'])}</span></td><td class='detail'>{_e(detail)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _drift_table(drift: dict | None) -> str:
    if not drift or not drift.get("entries"):
        return "<p class='note'>No drift data (no update test ran).</p>"
    head = ["optimizer", "path", "dtype", "cases", "ulp@1 max", "ulp@last max", "p99", "median", "limited",
            "lost", "max err/bound", "verdict"]
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    order = ["float16", "bfloat16", "float32", "float64"]
    for r in sorted(drift["entries"], key=lambda r: (r["optimizer"], r["path"], order.index(r["dtype"])
                                                     if r["dtype"] in order else len(order))):
        u1, ul = r["ulp"]["step1"], r["ulp"]["last"]
        cells = [_fmt(u1["max"]), _fmt(ul["max"]), _fmt(ul["p99"]), _fmt(ul["median"]),
                 _pct(r["limited_share"]), _pct(r["lost_update_share"]), _fmt(r["max_ratio"])]
        verdict = {"pass": "conforms", "FAIL": "departs", "xfail-known": "known deviation"}.get(r["verdict"],
                                                                                                 r["verdict"])
        out.append(f"<tr><td>{_e(r['optimizer'])}</td><td>{_e(r['path'])}</td><td>{_e(r['dtype'])}</td>"
                   f"<td class='num'>{r['cases']}</td>" + "".join(f"<td class='num'>{_e(c)}</td>" for c in cells)
                   + f"<td><span class='badge {_BADGE.get(verdict, 'not-checked')}'>{_e(verdict)}</span></td></tr>")
    out.append("</table>")
    out.append("<p class='note'>Per optimizer × path × dtype, over the Hypothesis cases of the update tests: "
               "the parameter's largest ULP error at step 1 and at the last step of each trajectory case (max, "
               "p99 nearest rank, median); limited / lost: share of values that are dtype-limited / updates "
               "lost to rounding; max err/bound: the largest error over the derived error bound (&gt; 1 "
               "departs).</p>")
    return "\n".join(out)


def error_per_step(audit: dict, args, impl=None, progress=sys.stderr) -> tuple[str | None, str]:
    """(an inline PNG data URI or None, a caption): ``reports.drift_study.run_one`` per audited optimizer × dtype."""
    steps = getattr(args, "drift_steps", 100)
    if steps <= 0:
        return None, "Not drawn (--drift-steps 0)."
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None, "Not drawn: matplotlib is not installed (pip install 'optimizer-conformance[plots]')."
    from . import drift_study as drift
    combos = []
    for t in audit["tests"].values():
        p = t.get("params", {})
        if t.get("test") == "test_trajectory" and t.get("outcome") in ("passed", "failed", "xfailed"):
            combos.append((p["optimizer"], p["path"], p["dtype"]))
    combos = list(dict.fromkeys(combos))
    if not combos:
        return None, "Not drawn: no trajectory test ran."
    results = []
    for i, (opt, path, dtype) in enumerate(combos, 1):
        print(f"[plot {i}/{len(combos)}] {opt} {path} {dtype}: {steps} steps vs the exact trajectory",
              file=progress, flush=True)
        try:
            results.append(drift.run_one(audit["backend"], path, opt, dtype, steps, 8, 0, impl=impl))
        except Exception as exc:  # a class that raises on this problem: the test verdicts say why
            print(f"  not drawn: {type(exc).__name__}: {exc}", file=progress, flush=True)
    results = [r for r in results if "ulp" in r]
    if not results:
        return None, "Not drawn: the implementation did not run the drift problem."
    dtypes = list(dict.fromkeys(r["dtype"] for r in results))
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        png = os.path.join(d, "drift.png")
        title = f"{audit['target'] or audit['backend']}: max ULP error of θ per step vs the exact trajectory"
        drift.plot(results, dtypes, png, title)
        with open(png, "rb") as f:
            uri = "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")
    worst = max(results, key=lambda r: max((x for x in r["ratio"] if x == x), default=0.0))
    caption = (f"{steps} steps of {drift.__name__}'s fixed noisy quadratic ({len(results[0]['final_theta'])} "
               f"parameters, the spec's default hyperparameters); the largest error/bound ratio over all steps "
               f"is {_fmt(max((x for x in worst['ratio'] if x == x), default=float('nan')))} "
               f"({worst['optimizer']} {worst['dtype']}); above 1 departs.")
    return uri, caption


def _failures(audit: dict) -> str:
    from .audit import split_failure
    failed = [(n, t) for n, t in audit["tests"].items() if t["outcome"] == "failed"]
    if not failed:
        return "<p>No test failed.</p>"
    out = []
    for n, t in failed:
        head, repro = split_failure(t.get("message", ""), t.get("longrepr", ""))
        out.append(f"<h3>{_e(n)}</h3><pre>{_e(head)}</pre>")
        out.append(f"<p class='note'>Reproduce with:</p><pre>{_e(repro)}</pre>" if repro
                   else "<p class='note'>(no reproduction block: see the test's message)</p>")
    return "\n".join(out)


def render(audit: dict, drift: dict | None, plot: tuple) -> str:
    bad = audit["exit_status"] != 0
    target = drift.get("targets", {}).get(audit["backend"], {}) if drift else {}
    env = ", ".join(f"{k} {target[k]}" for k in ("torch", "device", "cpu") if target.get(k))
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    what = f"{audit['target']} as {audit['as']}" if audit["target"] else f"backend {audit['backend']}"
    uri, caption = plot
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Conformance audit: {_e(what)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>Conformance audit: {_e(what)}</h1>",
        f"<p class='meta'>{_e(audit['title'])}<br>{_e(env)}{' · ' if env else ''}{_e(created)}</p>",
        f"<div class='headline {'bad' if bad else 'ok'}'>{_e(audit['headline'])}</div>",
        "<h2>Verdict per concern</h2>", _verdict_table(audit["concerns"]),
        "<h2>Error per step</h2>",
        (f"<img class='plot' alt='ULP error per step' src='{uri}'>" if uri else ""),
        f"<p class='note'>{_e(caption)}</p>",
        "<h2>Drift of the checked cases</h2>", _drift_table(drift),
        "<h2>Failures and their reproductions</h2>", _failures(audit),
        "<p class='note'>Machine-readable: audit.json (verdicts, every test's outcome) and drift.json (the drift "
        "report) beside this page.</p>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def write_report(directory: str, audit: dict, drift_json: str, args, impl=None) -> str:
    drift = None
    if os.path.exists(drift_json):
        with open(drift_json) as f:
            drift = json.load(f)
    plot = error_per_step(audit, args, impl)
    path = os.path.join(directory, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(audit, drift, plot))
    return path
