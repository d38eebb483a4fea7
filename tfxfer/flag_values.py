"""Turns the recipes' flag text into library values (the library itself never reads flags)."""

from tfxfer.freezing import FineTuneAt


def parse_weights(text: str | None) -> str | None:
    """`--weights` text: "none"/"" (random init) becomes None; anything else ("imagenet",
    "pretrained", a path) is kept, as the image and text builders take it."""
    if text is None or text.strip().lower() in ("", "none"):
        return None
    return text


def parse_fine_tune_at(text: str) -> FineTuneAt:
    """`--fine_tune_at` text: "100" -> 100 (index), "0.3" -> 0.3 (fraction), else a layer name."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
