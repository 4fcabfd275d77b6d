"""The project's own user-facing error types.

The CLI prints an :class:`InputError` as one line (``napari-interfaces:
error: ...``, exit status 2) and the docks show it as a napari notification.
Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["InputError", "ParameterError", "OutputExistsError", "SizeLimitError", "ref"]

_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def ref(name: str) -> str:
    """A reference to the parameter ``name`` inside a message (``{out}``).

    The engine names parameters by their spec field, never by a CLI flag:
    ``f"{ref('out')} {path}: exists; pass {ref('overwrite')} to replace it"``
    reads "out ...: exists; pass overwrite ..." in a dock or a traceback and
    "--out ...: ...; pass --overwrite ..." on the command line. A name that
    is not an identifier (already a flag, a file) is kept as it is.
    """
    return "{" + name + "}" if name.isidentifier() else name


class InputError(ValueError):
    """Bad input from the user: a file, a parameter or an output path.

    The message must name what is wrong (the file and the offset or line,
    or the parameter) and fit on one line. Parameters are referred to as
    :func:`ref` placeholders; ``str(exc)`` shows their field names and
    :meth:`spelled` the front end's spelling (the CLI's flags).
    """

    def __init__(self, *args: object) -> None:
        self.template = str(args[0]) if args else ""
        if args and isinstance(args[0], str):
            args = (self.spelled(str), *args[1:])
        super().__init__(*args)

    def spelled(self, spell: Callable[[str], str]) -> str:
        """The message with every ``{field}`` reference written as ``spell(field)``."""
        return _REF.sub(lambda m: spell(m.group(1)), self.template)


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
        super().__init__(f"{ref(name)}: {message}")
        self.reason = _REF.sub(lambda m: m.group(1), message)


class OutputExistsError(InputError):
    """An output already exists (or is one of the inputs) and ``overwrite`` is off."""


class SizeLimitError(InputError):
    """Reading or allocating this would need more memory than the configured limit."""
