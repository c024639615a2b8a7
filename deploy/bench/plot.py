#!/usr/bin/env python3
"""Draws the PNG of a `strongholdctl bench` case from its CSV files.

Usage:
  plot.py --check                       exit 0 if matplotlib can be imported
  plot.py CASE PNG CSV [CSV...]         CASE: largest|throughput|scaling|window

strongholdctl runs this itself after a case (docs/bench.md); it can also be run
by hand on the CSV files of an earlier case. The CSV columns are those that
client/bench/report.cc and client/bench/cases.cc write. Runs that did not fit
or failed are drawn as such, never left out.
"""
import csv
import sys


def load_matplotlib():
    try:
        import matplotlib
    except ImportError as e:
        sys.exit(f"plot.py: {e} (Debian: apt-get install python3-matplotlib)")
    matplotlib.use("Agg")  # no display; write files only
    import matplotlib.pyplot as plt
    return plt


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def number(text):
    return float(text) if text not in ("", None) else None


def method_name(row):
    return row["method"].upper()


def plot_largest(plt, rows):
    fig, ax = plt.subplots(figsize=(6, 4))
    names = [method_name(r) for r in rows]
    params = [int(r["parameters"]) if int(r["largest_layers"]) > 0 else 0 for r in rows]
    scale, unit = (1e9, "B") if max(params + [0]) >= 1e9 else (1e6, "M")
    bars = ax.bar(names, [p / scale for p in params], color="#4c72b0")
    for bar, row, p in zip(bars, rows, params):
        layers = int(row["largest_layers"])
        confirmed = row["confirmed"].startswith("SUCCEEDED")
        if layers == 0:
            label = "does not fit"
        else:
            bound = "+" if row["at_search_bound"] == "true" else ""
            label = f"{layers}{bound} layers\n{p / scale:.3f} {unit}"
            if not confirmed:
                label += "\nrun failed"
                bar.set_hatch("//")
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(f"largest trainable model ({unit} parameters)")
    ax.set_title("Largest trainable model size (planner search + confirming run)")
    ax.margins(y=0.25)
    return fig


def plot_throughput(plt, rows):
    sizes = []
    for r in rows:
        if r["size"] not in sizes:
            sizes.append(r["size"])
    methods = []
    for r in rows:
        if method_name(r) not in methods:
            methods.append(method_name(r))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        for j, size in enumerate(sizes):
            row = next((r for r in rows if r["size"] == size and method_name(r) == m), None)
            x = j + (i - (len(methods) - 1) / 2) * width
            value = number(row["samples_per_s"]) if row else None
            if value is None:
                text = row["outcome"].lower() if row else "not run"
                ax.annotate(text, (x, 0), ha="center", va="bottom", rotation=90, fontsize=7)
                continue
            ax.bar(x, value, width, color=f"C{i}", label=m)
            ax.annotate(f"{value:.3g}", (x, value), ha="center", va="bottom", fontsize=7)
    labels = []
    for size in sizes:
        layers = next(r["size_layers"] for r in rows if r["size"] == size)
        labels.append(f"{size}\n({layers} layers)")
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("samples/s")
    ax.set_title("Throughput at each method's largest trainable size")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend(unique.values(), unique.keys())
    ax.margins(y=0.2)
    return fig


def plot_scaling(plt, rows, fits):
    fig, ax = plt.subplots(figsize=(6, 4))
    methods = []
    for r in rows:
        if method_name(r) not in methods:
            methods.append(method_name(r))
    for i, m in enumerate(methods):
        ok = [r for r in rows if method_name(r) == m and number(r["iteration_ms"]) is not None]
        xs = [int(r["layers"]) for r in ok]
        ys = [number(r["iteration_ms"]) for r in ok]
        ax.plot(xs, ys, "o", color=f"C{i}", label=f"{m} measured")
        for r in rows:
            if method_name(r) == m and number(r["iteration_ms"]) is None:
                ax.axvline(int(r["layers"]), color=f"C{i}", linestyle=":", linewidth=1)
                ax.annotate(r["outcome"].lower(), (int(r["layers"]), 0), rotation=90,
                            fontsize=7, va="bottom")
        fit = next((f for f in fits if f["method"].upper() == m), None)
        if fit and xs:
            slope, intercept, r2 = (float(fit[k]) for k in ("slope_ms_per_layer", "intercept_ms", "r2"))
            line_x = [min(xs), max(xs)]
            ax.plot(line_x, [slope * x + intercept for x in line_x], "-", color=f"C{i}",
                    label=f"{m} fit: {slope:.3g} ms/layer, R² = {r2:.4f}")
    ax.set_xlabel("transformer layers")
    ax.set_ylabel("elapsed time per iteration (ms)")
    ax.set_title("Iteration time against model size")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig


def plot_window(plt, rows):
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = [r for r in rows if number(r["iteration_ms"]) is not None]
    fixed = sorted((r for r in ok if r["window_requested"] != "0"), key=lambda r: int(r["window_used"]))
    ax.plot([int(r["window_used"]) for r in fixed], [number(r["iteration_ms"]) for r in fixed],
            "o-", label="iteration time")
    ax.plot([int(r["window_used"]) for r in fixed], [number(r["h2d_wait_ms"]) for r in fixed],
            "s--", label="H2D wait")
    for r in ok:
        if r["window_requested"] == "0":
            ax.plot(int(r["window_used"]), number(r["iteration_ms"]), "*", markersize=14,
                    label=f"automatic (chose {r['window_used']})")
    for r in rows:
        if number(r["iteration_ms"]) is None:
            w = int(r["window_requested"])
            ax.axvline(w, color="grey", linestyle=":", linewidth=1)
            ax.annotate(r["outcome"].lower(), (w, 0), rotation=90, fontsize=7, va="bottom")
    layers = rows[0]["layers"] if rows else "?"
    ax.set_xlabel("working window (layers)")
    ax.set_ylabel("ms per iteration")
    ax.set_title(f"Impact of the working window (STRONGHOLD, {layers} layers)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig


def main(argv):
    if argv[1:] == ["--check"]:
        load_matplotlib()
        return 0
    if len(argv) < 4:
        sys.exit(__doc__)
    case, png, csvs = argv[1], argv[2], argv[3:]
    plt = load_matplotlib()
    rows = read_csv(csvs[0])
    if case == "largest":
        fig = plot_largest(plt, rows)
    elif case == "throughput":
        fig = plot_throughput(plt, rows)
    elif case == "scaling":
        fig = plot_scaling(plt, rows, read_csv(csvs[1]) if len(csvs) > 1 else [])
    elif case == "window":
        fig = plot_window(plt, rows)
    else:
        sys.exit(f"plot.py: unknown case {case!r} (largest|throughput|scaling|window)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
