"""How every loader reports what it left out or changed: counts by reason, what each reason means, and where it
first happened, in one wording for texts (CSV rows, lines, files) and the rows of an image CSV alike:

    Skipped in reviews.csv: malformed 1 (more or fewer fields than the header: quote fields holding the delimiter
    or a line break; first at line 4).
"""

from absl import logging

# What each reason of a loader's `skipped` and `changed` counts means, for the log.
REASONS = {
    "undecodable": "not UTF-8: re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in > out`",
    "empty": "empty or whitespace only",
    "no_label": "no class name",
    "no_image": "no image path",
    "unknown_label": "a label outside the class names",
    "malformed": "more or fewer fields than the header: quote fields holding the delimiter or a line break",
    "truncated_chars": "longer than max_text_chars, cut to it",
    "empty_class_names": "empty class names between separators, as in 'billing||urgent', dropped",
}


def log_losses(source: str, skipped: dict[str, int], changed: dict[str, int] | None = None,
               first_at: dict[str, str] | None = None) -> None:
    """Logs a warning per kind of loss in `source`: the examples `skipped` (left out) and `changed` (kept but
    altered), each a count by reason, with where each reason first happened (`first_at`: `"line 4"`).
    Reasons counted 0 are left out."""
    first_at = first_at or {}
    for kind, counts in (("Skipped", skipped), ("Kept but changed", changed or {})):
        happened = sorted((reason, count) for reason, count in counts.items() if count)
        if happened:
            logging.warning("%s in %s: %s.", kind, source, "; ".join(
                f"{reason} {count} ({REASONS.get(reason, reason)}"
                + (f"; first at {first_at[reason]})" if reason in first_at else ")")
                for reason, count in happened))
