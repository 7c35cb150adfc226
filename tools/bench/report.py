#!/usr/bin/python3
"""Write docs/BENCHMARKS.md (and the chart bench.svg beside it) from the
section results of `make bench`:

    /usr/bin/python3 tools/bench/report.py BENCH_OUT docs/BENCHMARKS.md

Reads every BENCH_OUT/SECTION.json there is ({"section", "results",
"ratios", "targets", optional "machine", "method"}); a section that is
missing is named as such. The chart is SVG written here by hand, so that
the report needs nothing beyond Python.
"""
import datetime
import glob
import json
import os
import platform
import sys

SECTIONS = [("pps", "1. Forwarded packets per second"),
            ("prog", "2. Program cost (BPF_PROG_TEST_RUN)"),
            ("scale", "3. Scale"),
            ("cps", "4. Connections per second"),
            ("control", "5. Control plane"),
            ("memory", "6. Memory per tracked connection")]


def machine():
    """CPU model, vCPUs, kernel and date of this run."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "vcpus": os.cpu_count(), "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v == int(v) and abs(v) >= 100:
            return "{:,}".format(int(v))
        return "{:,.3g}".format(v) if abs(v) < 100 else "{:,.1f}".format(v)
    if isinstance(v, int):
        return "{:,}".format(v)
    if isinstance(v, (list, dict)):
        return ", ".join(fmt(x) for x in v) if isinstance(v, list) else json.dumps(v)
    return str(v).replace("|", "\\|")


def table(rows):
    """A markdown table of dicts, columns in first-seen order."""
    cols = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    return out


def load(out_dir):
    docs = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*.json"))):
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            print("report.py: skipping %s: %s" % (path, e), file=sys.stderr)
            continue
        if isinstance(d, dict) and "results" in d:
            docs[d.get("section") or os.path.basename(path)[:-5]] = d
    return docs


def svg_bars(title, unit, bars, x, y, w, h):
    """One horizontal bar chart: @bars [(label, value)] in a w x h box."""
    bars = [(lb, v) for lb, v in bars if isinstance(v, (int, float))]
    parts = ['<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>' %
             (x, y + 14, esc(title))]
    if not bars:
        return parts
    top = max(v for _, v in bars) or 1
    row = min(28, (h - 24) / len(bars))
    label_w = 220
    for i, (lb, v) in enumerate(bars):
        by = y + 24 + i * row
        bw = max(1, (w - label_w - 90) * v / top)
        parts.append('<text x="%d" y="%.1f" font-size="12" text-anchor="end">%s</text>' %
                     (x + label_w - 6, by + row * 0.6, esc(lb)))
        parts.append('<rect x="%d" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' %
                     (x + label_w, by + 2, bw, row - 6,
                      "#2a7ab0" if "xdpfwd" in lb or "established" in lb else "#9aa7b1"))
        parts.append('<text x="%.1f" y="%.1f" font-size="12">%s %s</text>' %
                     (x + label_w + bw + 4, by + row * 0.6, fmt(v), esc(unit)))
    return parts


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chart(docs, path):
    """bench.svg: pps per variant, forwarding cost, program cost."""
    panels = []
    pps = docs.get("pps", {}).get("results", [])
    if pps:
        label = lambda r: "%s, %s flows" % (r.get("variant"), r.get("flows"))  # noqa: E731
        panels.append(("Forwarded Mpps (64-byte UDP)", "Mpps",
                       [(label(r), (r.get("pps_median") or 0) / 1e6) for r in pps]))
        panels.append(("Forwarding cost per packet", "ns",
                       [(label(r), r.get("cost_ns")) for r in pps if r.get("cost_ns") is not None]))
    prog = docs.get("prog", {}).get("results", [])
    if prog:
        panels.append(("Program cost, BPF_PROG_TEST_RUN (harness subtracted)", "ns",
                       [(r["variant"], r.get("net_ns")) for r in prog if r.get("net_ns") is not None]))
    cps = docs.get("cps", {}).get("results", [])
    if cps:
        panels.append(("Connections per second", "cps",
                       [(r.get("variant"), r.get("cps_median")) for r in cps]))
    w, ph = 760, 200
    h = max(60, len(panels) * (ph + 20) + 20)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'font-family="sans-serif">' % (w, h),
             '<rect width="100%" height="100%" fill="white"/>']
    if not panels:
        parts.append('<text x="20" y="30" font-size="14">no results to chart</text>')
    for i, (title, unit, bars) in enumerate(panels):
        parts += svg_bars(title, unit, bars, 20, 10 + i * (ph + 20), w - 40, ph)
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py BENCH_OUT docs/BENCHMARKS.md")
    out_dir, md = sys.argv[1], sys.argv[2]
    docs = load(out_dir)
    m = machine()
    for d in docs.values():      # a section's own record of the machine wins
        if isinstance(d.get("machine"), dict):
            m.update({k: v for k, v in d["machine"].items() if k in m or k == "cpu"})
            break
    svg = os.path.join(os.path.dirname(os.path.abspath(md)), "bench.svg")
    chart(docs, svg)
    lines = ["# xdpfwd benchmarks", "",
             "Written by `make bench` (tools/bench/run.sh, tools/bench/report.py); do not edit.", "",
             "## Machine", "",
             "| CPU | vCPUs | kernel | date |", "|---|---|---|---|",
             "| %s | %s | %s | %s |" % (esc(m["cpu"]), m["vcpus"], m["kernel"], m["date"]), "",
             "![bench chart](%s)" % os.path.basename(svg), ""]
    targets = []
    for name, title in SECTIONS + [(s, s) for s in sorted(docs) if s not in dict(SECTIONS)]:
        lines += ["## " + title, ""]
        d = docs.get(name)
        if d is None:
            lines += ["*Not measured in this run: %s.json is missing from the results.*" % name, ""]
            continue
        if d.get("method"):
            lines += [d["method"], ""]
        lines += table([{k: v for k, v in r.items()} for r in d["results"]]) + [""]
        if d.get("ratios"):
            lines += table([{"ratio": k, "value": v} for k, v in d["ratios"].items()]) + [""]
        for tname, t in (d.get("targets") or {}).items():
            targets.append({"section": name, "target": tname, "value": t.get("value"),
                            "wanted": t.get("target"), "met": bool(t.get("met"))})
    lines += ["## Targets", ""]
    lines += table(targets) if targets else ["*No section reported a target.*"]
    lines.append("")
    os.makedirs(os.path.dirname(os.path.abspath(md)), exist_ok=True)
    with open(md, "w") as f:
        f.write("\n".join(lines))
    print("report.py: wrote %s and %s (%d of %d sections)" %
          (md, svg, sum(1 for s, _ in SECTIONS if s in docs), len(SECTIONS)))


if __name__ == "__main__":
    main()
