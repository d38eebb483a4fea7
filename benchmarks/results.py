"""How every benchmark reports: means and ranges over seeds; results as JSON on stdout, and in a file if asked."""

import json
import os


def report(results: dict, output: str | None) -> None:
    """Prints `results` as JSON, and writes the same text to `output` unless it is None."""
    text = json.dumps(results, indent=2)
    print(text)
    if output:
        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        with open(output, "w") as f:
            f.write(text)


def summarise(runs: list[dict]) -> dict:
    """Each numeric figure's mean over `runs`, and its `[min, max]` under `range`."""
    names = [name for name, value in runs[0].items()
             if name != "seed" and isinstance(value, (int, float)) and not isinstance(value, bool)]
    summary = {name: sum(run[name] for run in runs) / len(runs) for name in names}
    summary["range"] = {name: [min(run[name] for run in runs), max(run[name] for run in runs)] for name in names}
    return summary
