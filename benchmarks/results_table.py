"""`benchmarks/RESULTS.md` from the JSON `run.py` writes: tables of means and ranges over the seeds."""

_IMAGE_ROWS = [  # (figure, label, format)
    ("image_size", "input size (pixels)", "{:.0f}"),
    ("val_accuracy", "validation accuracy (153 images)", "{:.4f}"),
    ("phase1_seconds", "phase 1 seconds", "{:.1f}"),
    ("phase2_seconds", "phase 2 seconds", "{:.1f}"),
    ("seconds", "end to end seconds", "{:.1f}"),
    ("phase2_images_per_second", "phase 2 training images/s", "{:.1f}"),
    ("pipeline_images_per_second", "input pipeline alone, images/s", "{:.0f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
]
# (results key, column label); results written before the second probe existed have no column for it.
_IMAGE_COLUMNS = [("tfxfer", "tfxfer"), ("baseline", "Keras-guide baseline"), ("probe", "linear probe"),
                  ("probe_at_tfxfer_size", "linear probe at tfxfer's size")]
_TEXT_ROWS = [("val_accuracy", "validation accuracy", "{:.4f}"), ("seconds", "end to end seconds", "{:.0f}")]


def markdown(results: dict) -> str:
    """The whole page: the machine, then the command and tables of each half that ran."""
    machine = results["machine"]
    lines = ["# Benchmark results", "",
             f"{machine['cpu_count']} CPUs ({machine['cpu']}), TensorFlow {machine['tensorflow']}, "
             f"Keras {machine['keras']}. Means over the seeds, with the range in brackets.", ""]
    if "image" in results:
        lines += _image(results["image"])
    if "text" in results:
        lines += _text(results["text"])
    return "\n".join(lines) + "\n"


def _cell(summary: dict, figure: str, form: str) -> str:
    if summary.get(figure) is None:
        return ""
    low, high = summary.get("range", {}).get(figure, (None, None))
    spread = f" [{form.format(low)}–{form.format(high)}]" if low is not None and low != high else ""
    return form.format(summary[figure]) + spread


def _image(image: dict) -> list[str]:
    seeds = [run["seed"] for run in image["runs"]["tfxfer"]]
    lines = [f"## Image: ants vs bees, MobileNetV2-0.35 (seeds {', '.join(map(str, seeds))})", "",
             f"`{image['command']}`", "",
             "| | " + " | ".join(label for name, label in _IMAGE_COLUMNS if name in image) + " |",
             "|---" * (1 + sum(name in image for name, _ in _IMAGE_COLUMNS)) + "|"]
    columns = [image[name] for name, _ in _IMAGE_COLUMNS if name in image]
    for figure, label, form in _IMAGE_ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(column, figure, form) for column in columns) + " |")
    ratios = image["ratios"]
    lines += ["", "| ratio | value |", "|---|---|",
              f"| phase 1 speed-up (baseline seconds / tfxfer's) | {ratios['phase1_speedup']:.2f}× |",
              f"| phase 2 throughput (tfxfer images/s / baseline's) | {ratios['phase2_throughput']:.2f}× |",
              f"| end to end time (tfxfer seconds / baseline's) | {ratios['end_to_end_time']:.2f}× |", ""]
    return lines


def _text(text: dict) -> list[str]:
    seeds = [run["seed"] for run in text["runs"]["tfxfer"]]
    lines = [f"## Text: rt-polarity, MiniLM (seeds {', '.join(map(str, seeds))})", "",
             f"`{text['command']}`", "",
             "| | tfxfer (text recipe) | logistic-regression probe |", "|---|---|---|"]
    for figure, label, form in _TEXT_ROWS:
        lines.append(f"| {label} | {_cell(text['tfxfer'], figure, form)} | {_cell(text['probe'], figure, form)} |")
    return lines + [""]
