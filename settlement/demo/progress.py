"""How the demo tells what it is doing: one step at a time, with a count where the
step has one. The command shows it with Rich; :class:`Silent` shows nothing."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def begin(self, title: str, total: int | None = None) -> None:
        """A new step starts (``total`` units of work, if known)."""
        ...

    def advance(self, units: int = 1) -> None:
        """``units`` more of the current step are done."""
        ...

    def end(self, detail: str = "") -> None:
        """The current step is over; ``detail`` says what it did."""
        ...

    def note(self, text: str) -> None:
        """A line worth reading that is not a step."""
        ...


class Silent:
    """A reporter that says nothing."""

    def begin(self, title: str, total: int | None = None) -> None:
        return None

    def advance(self, units: int = 1) -> None:
        return None

    def end(self, detail: str = "") -> None:
        return None

    def note(self, text: str) -> None:
        return None
