"""The project's own user-facing error types.

The CLI prints an :class:`InputError` as one line (``napari-interfaces:
error: ...``, exit status 2) and the docks show it as a napari notification.
Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["InputError", "ParameterError", "OutputExistsError", "SizeLimitError"]


class InputError(ValueError):
    """Bad input from the user: a file, a parameter or an output path.

    The message must name what is wrong (the file and the offset or line,
    or the parameter) and fit on one line.
    """


class ParameterError(InputError):
    """A parameter value is out of range; the message starts with its name.

    The engine names a parameter by its spec field (``merge_to``); the CLI
    re-spells it as its flag (``--merge-to``) and the dock marks the field.

    Attributes
    ----------
    name : str
        The parameter (a spec field name, or a file/flag where no spec applies).
    reason : str
        The message without the name.
    """

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.reason = message
        super().__init__(f"{name}: {message}")


class OutputExistsError(InputError):
    """An output already exists (or is one of the inputs) and ``overwrite`` is off."""


class SizeLimitError(InputError):
    """Reading or allocating this would need more memory than the configured limit."""
