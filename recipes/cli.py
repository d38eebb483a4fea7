"""How every recipe starts: `cli.run(main)` instead of `absl.app.run(main)`.

A user's mistake (a bad flag value, a missing file, data that does not fit the
model) ends with its message on stderr and exit code 2, without a traceback:

    image_classifier.py: error: Unknown backbone. Did you mean 'mobilenet_v2'? ...

Mistakes are the errors absl finds parsing the flags (an unknown flag, a value
of the wrong type or not among a flag's choices, a required flag left out),
`app.UsageError`s the recipe raises about its flags, and
`tfxfer.errors.UserError`s the library raises. Anything else is a bug in
tfxfer or below it, and keeps its traceback.

Importing this module first (every recipe does) also keeps TensorFlow's
start-up quiet: see `quiet_start`.
"""

import quiet_start  # isort: skip  (before anything imports TensorFlow)

import os
import sys
from collections.abc import Callable

from absl import app, flags

from tfxfer import errors

USAGE_ERROR_EXIT_CODE = 2  # what argparse and most Unix tools use for "you asked for something impossible"


def run(main: Callable[[list[str]], object]) -> None:
    """Parses the flags and runs `main(argv)`, as `absl.app.run` does; user errors become a message.

    main: callable. The recipe's `main(argv)`.
    """

    def main_with_messages(argv):
        quiet_start.shorten_log_lines()
        try:
            return main(argv)
        except (app.UsageError, errors.UserError) as error:
            exit_with_message(error)

    app.run(main_with_messages, flags_parser=parse_flags_with_messages)


def parse_flags_with_messages(argv: list[str]) -> list[str]:
    """Parses the flags as `absl.app.run` does; a mistake in them ends as the recipe's own usage errors do.

    absl itself would write "FATAL Flags parsing error: ..." and exit with code 1.
    `--help` and `--helpfull` exit from inside the parsing, as with absl's parser.
    """
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        exit_with_message(app.UsageError(str(error)))


def exit_with_message(error: Exception) -> None:
    """Writes `<script>: error: <message>` to stderr and exits with code 2."""
    script = os.path.basename(sys.argv[0])
    hint = f"\nRun {script} --helpshort for its flags." if isinstance(error, app.UsageError) else ""
    sys.stderr.write(f"{script}: error: {error}{hint}\n")
    sys.stderr.flush()
    sys.exit(USAGE_ERROR_EXIT_CODE)
