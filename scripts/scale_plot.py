#!/usr/bin/env python3
"""Plot the scale benchmark: an SVG (no plotting library needed) from bench/results/scale/results.jsonl.

Three panels against N (log-log): time until all N minions signed in after a cold start; `test.ping`
to all (the CLI's wall time, median of the runs); the master's resident memory (summed over its
processes) at the end. One line per master (ours, Salt 3008.5) through the median at each N; every
run is a dot. Runs that did not complete the storm are drawn as open circles at the storm timeout.

Usage: scripts/scale_plot.py [--label LABEL] [RESULTS.jsonl] [OUT.svg]
  --label: only the runs whose "label" starts with LABEL (default: every run).
"""
import argparse
import html
import json
import math
import os

COLORS = {"ours": "#1f77b4", "salt": "#d62728"}
NAMES = {"ours": "salt-master-rs", "salt": "Salt 3008.5 salt-master"}


def med(xs):
    xs = sorted(xs)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def metrics(r):
    s = r.get("storm", {})
    walls = [p["wall_s"] for p in r.get("ping", []) if p.get("ok") == r["n"]]
    signed = s.get("all_signed_in_s") if s.get("complete") else None
    return {
        "signed": (signed, s.get("complete", False), s.get("timeout_s")),
        "ping": (med(walls), bool(walls), None),
        "rss": (r.get("master_rss_end_mib"), r.get("master_rss_end_mib") is not None, None),
    }


def nice_ticks(lo, hi):
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return [10 ** e for e in range(a, b + 1)]


def fmt_tick(v):
    if v >= 1000:
        return f"{v / 1000:g}k" if v < 1e6 else f"{v:g}"
    return f"{v:g}"


def panel(x0, y0, w, h, title, ylabel, series, xs_all):
    """series: {master: [(n, value, ok)]}; returns SVG elements."""
    out = []
    vals = [v for pts in series.values() for (_, v, _) in pts if v]
    if not vals:
        return out
    xlo, xhi = min(xs_all) / 1.5, max(xs_all) * 1.5
    ylo, yhi = min(vals) / 2, max(vals) * 2
    xt, yt = nice_ticks(xlo, xhi), nice_ticks(ylo, yhi)
    xlo, xhi = min(xlo, xt[0]), max(xhi, xt[-1])
    ylo, yhi = min(ylo, yt[0]), max(yhi, yt[-1])
    X = lambda n: x0 + (math.log10(n) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo)) * w
    Y = lambda v: y0 + h - (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)) * h
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 - 10}" text-anchor="middle" font-weight="bold">{title}</text>')
    for t in xt:
        if xlo <= t <= xhi:
            out.append(f'<line x1="{X(t):.1f}" y1="{y0}" x2="{X(t):.1f}" y2="{y0 + h}" stroke="#eee"/>')
            out.append(f'<text x="{X(t):.1f}" y="{y0 + h + 16}" text-anchor="middle">{fmt_tick(t)}</text>')
    for t in yt:
        if ylo <= t <= yhi:
            out.append(f'<line x1="{x0}" y1="{Y(t):.1f}" x2="{x0 + w}" y2="{Y(t):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 6}" y="{Y(t) + 4:.1f}" text-anchor="end">{fmt_tick(t)}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 34}" text-anchor="middle">minions (N)</text>')
    out.append(f'<text transform="translate({x0 - 44},{y0 + h / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>')
    for master, pts in series.items():
        c = COLORS.get(master, "#333")
        by_n = {}
        for n, v, ok in pts:
            if v:
                by_n.setdefault(n, []).append(v)
                fill = c if ok else "white"
                out.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{fill}" stroke="{c}" opacity="0.8"/>')
        line = [(n, med(v)) for n, v in sorted(by_n.items())]
        if len(line) > 1:
            d = " ".join(f"{'M' if i == 0 else 'L'}{X(n):.1f},{Y(v):.1f}" for i, (n, v) in enumerate(line))
            out.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?", default="bench/results/scale/results.jsonl")
    ap.add_argument("out", nargs="?", default="bench/results/scale/scale.svg")
    ap.add_argument("--label", default=None)
    a = ap.parse_args()
    rows = []
    with open(a.results) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if a.label is None or (r.get("label") or "").startswith(a.label):
                    rows.append(r)
    if not rows:
        raise SystemExit(f"no runs in {a.results}" + (f" labelled {a.label}*" if a.label else ""))
    plot(rows, a.out, os.path.basename(a.results) + (f", label {a.label}*" if a.label else ""))


def plot(rows, out, note):
    """Write the SVG of `rows` (results.jsonl lines) to `out`; `note` says where they came from."""
    keys = [("signed", "Cold start: all signed in", "seconds"),
            ("ping", "test.ping to all (CLI, median)", "seconds"),
            ("rss", "Master memory at the end (RSS)", "MiB")]
    series = {k: {} for k, _, _ in keys}
    for r in rows:
        m = metrics(r)
        for k, _, _ in keys:
            v, ok, timeout = m[k]
            if v is None and timeout:
                v, ok = timeout, False
            if v is not None:
                series[k].setdefault(r["master"], []).append((r["n"], v, ok))
    xs_all = sorted({r["n"] for r in rows})
    W, H, pw, ph, top = 1080, 420, 260, 260, 70
    els = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for i, (k, title, unit) in enumerate(keys):
        els += panel(80 + i * (pw + 90), top, pw, ph, title, unit, series[k], xs_all)
    lx = 80
    for master in ("ours", "salt"):
        if any(master in series[k] for k, _, _ in keys):
            c = COLORS[master]
            els.append(f'<line x1="{lx}" y1="{H - 25}" x2="{lx + 24}" y2="{H - 25}" stroke="{c}" stroke-width="2"/>')
            els.append(f'<circle cx="{lx + 12}" cy="{H - 25}" r="3.5" fill="{c}"/>')
            els.append(f'<text x="{lx + 30}" y="{H - 21}">{NAMES[master]}</text>')
            lx += 220
    els.append(f'<text x="{lx}" y="{H - 21}" fill="#555">dots: runs; line: median; open circle: storm not complete '
               f'(drawn at the timeout). {len(rows)} runs, {html.escape(note)}</text>')
    els.append("</svg>")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(els) + "\n")
    print(f"wrote {out} ({len(rows)} runs)")


if __name__ == "__main__":
    main()
