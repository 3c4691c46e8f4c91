"""Reading what people type: filters and form fields as typed values, with one
message per bad field (shown beside the field), never a stack trace.

Every parser takes the raw text (None when the field was not sent) and either returns
the value or records a message under the field's name; :meth:`Fields.done` then
raises ``console_invalid_input`` naming every bad field at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from settlement.console.errors import InvalidInput

MAX_ID = 2**63 - 1


class Fields:
    """Collects the messages of one form's bad fields."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def choice(self, name: str, raw: str | None, allowed: Iterable[str], what: str) -> str | None:
        value = (raw or "").strip()
        if not value:
            return None
        options = list(allowed)
        if value not in options:
            self.errors[name] = f"{what} must be one of: {', '.join(options)} (not {value[:40]!r})."
            return None
        return value

    def integer(self, name: str, raw: str | None, what: str) -> int | None:
        value = (raw or "").strip()
        if not value:
            return None
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ID:
            self.errors[name] = f"{what} must be a whole number of 1 or more (not {value[:40]!r})."
            return None
        return int(value)

    def date(self, name: str, raw: str | None, what: str) -> dt.date | None:
        value = (raw or "").strip()
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.errors[name] = f"{what} must be a date written as YYYY-MM-DD (not {value[:40]!r})."
            return None

    def text(self, name: str, raw: str | None, what: str, *, required: bool = False, limit: int = 200) -> str | None:
        value = (raw or "").strip()
        if not value:
            if required:
                self.errors[name] = f"{what} is required."
            return None
        if len(value) > limit:
            self.errors[name] = f"{what} is longer than {limit} characters."
            return None
        if any(ord(c) < 32 for c in value):
            self.errors[name] = f"{what} contains control characters."
            return None
        return value

    def period(self, start_name: str, start: dt.date | None, end: dt.date | None) -> None:
        if start is not None and end is not None and start > end:
            self.errors[start_name] = "The first day must not be after the last day."

    def done(self) -> None:
        if self.errors:
            raise InvalidInput(f"{len(self.errors)} field(s) cannot be used", fields=dict(self.errors))


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def day_end(day: dt.date) -> dt.datetime:
    """The last instant of ``day`` (UTC): "as of a date" means at the end of that day."""
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
