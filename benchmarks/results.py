"""How every benchmark reports: its results as JSON on stdout, and in a file if asked."""

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
