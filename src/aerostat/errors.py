"""The one exception a user's mistake raises. cli.py turns it into a message
and exit status 1; nothing else in the package prints."""

from __future__ import annotations


class AerostatError(Exception):
    """A mistake the user can fix: a bad flag, a broken mapping file.

    ``source`` names the file (or flag); ``line`` and ``column`` are 1-based
    when known; ``field`` is the configuration key at fault."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.message}"
