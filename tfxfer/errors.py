"""The errors a caller fixes by changing what they passed, not by changing tfxfer.

Each one subclasses `UserError` *and* the built-in type the same check would
raise anyway (`ValueError`, `FileNotFoundError`, ...), so `except ValueError`
keeps working. The recipes (`recipes/cli.py`) show a `UserError` as its message
alone, with exit code 2; any other exception is a bug and keeps its traceback.
Raise them only with a message that says what was expected, what was received
(`Received: arg=value`) and what to do.
"""

import numbers


def is_real_number(value) -> bool:
    """Whether `value` is an int or float (NumPy's too), and not a bool: where every numeric argument check starts."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class UserError(Exception):
    """Base of the errors caused by the caller's arguments, files, data or environment."""


class ConfigError(UserError, ValueError):
    """An argument value, or data, that does not fit: an unknown name, a size the
    model cannot take, labels that do not match the head, a weights file of
    another architecture."""


class InvalidLabelsError(ConfigError):
    """A batch met during training or validation has labels that fit no class of the model's head. The message
    names the data and how many of the batch's examples."""


class MissingFileError(UserError, FileNotFoundError):
    """A path the caller passed does not exist, or does not hold what it should."""


class NotAFolderError(UserError, NotADirectoryError):
    """A path the caller passed as a folder is a file, or lies inside one."""


class UnavailableOfflineError(UserError, RuntimeError):
    """Something the run must download (ImageNet weights, a keras-hub preset, a TFDS
    dataset) could not be had, typically for want of internet; the message says
    how to pass a local copy instead."""


class NonFiniteLossError(UserError, FloatingPointError):
    """Training or validation met a loss that is NaN or infinite: the data holds NaN or infinite values, or the
    learning rate is too high for the model. The message names the batch."""
