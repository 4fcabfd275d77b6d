"""The one error type raised by every APT reader for bad input."""

from __future__ import annotations

from ..core.errors import InputError

__all__ = ["AptFormatError"]


class AptFormatError(InputError):
    """A point-cloud or range file is malformed.

    The message names the file and the byte offset (binary formats) or the
    line number (text formats) where the problem is. It subclasses
    the project's :class:`~napari_interfaces.core.errors.InputError`, so the CLI prints it as one line (exit status 2)
    and the GUI shows it as a notification.

    Attributes
    ----------
    path : str
    offset : int or None
        Byte offset of the problem (binary formats).
    line : int or None
        1-based line number of the problem (text formats).
    """

    def __init__(
        self, path: object, message: str, *, offset: int | None = None, line: int | None = None
    ) -> None:
        self.path = str(path)
        self.offset = offset
        self.line = line
        where = ""
        if offset is not None:
            where = f" at byte {offset}"
        elif line is not None:
            where = f" at line {line}"
        super().__init__(f"{self.path}{where}: {message}")
