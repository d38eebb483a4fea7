"""Which text files tfxfer reads (UTF-8, with or without a byte-order mark) and what it says of the others.

Standard library only, so that `tfxfer.prediction`, which must not load the data
loaders, reads a text file with the same checks and messages as they do.
"""

import codecs

from tfxfer.errors import ConfigError

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def check_not_utf16(path: str, head: bytes) -> None:
    """Raises a ConfigError for a UTF-16 file (`head`: its first bytes), which would lose every line as undecodable."""
    if head.startswith(_UTF16_BOMS):
        raise ConfigError(
            f"{path} is UTF-16 (it starts with a UTF-16 byte-order mark); texts are read as UTF-8. "
            "Re-save it as UTF-8, e.g. `iconv -f utf-16 -t utf-8 in > out`. "
            f"Received: first bytes {head[:4]!r}")


def decode_utf8(path: str, content: bytes) -> str:
    """`content`, the whole file at `path`, as text; a ConfigError naming the fix if it is not UTF-8.

    A leading UTF-8 byte-order mark (as Notepad writes) is dropped, so that it does
    not become part of the first line.
    """
    check_not_utf16(path, content[:4])
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}). Re-save it as UTF-8, "
                          f"e.g. `iconv -f latin1 -t utf-8 in > out`. Received: {path!r}") from None
