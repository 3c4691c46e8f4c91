"""Helpers of the browser tests: an accessibility smoke check run on every page, the
page's console errors, and numbered screenshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def _script(name: str) -> str:
    """A function expression from a file, its leading comment lines left out (Playwright
    calls a string that starts with the function)."""
    lines = (HERE / name).read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("//"))


#: Labels, headings, ids, names, skip link; numbers the elements Tab should reach.
AUDIT = _script("audit.js")
#: The focused element's number and whether its focus is visible.
FOCUSED = _script("focused.js")


@dataclass
class Pages:
    """Checks every page a test shows and keeps a screenshot of each."""

    page: Any
    folder: Path
    errors: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", lambda message: self.errors.append(f"console {message.type}: {message.text}")
                     if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def check(self, name: str, *, status: int | None = None) -> None:
        """Screenshot, then the smoke check: no console errors so far, labels, headings,
        and a walk with Tab through the whole page reaching every interactive element
        with a visible focus. ``status``: the page is an error page with this status
        (the browser logs that status as a console error; nothing else may be logged)."""
        self.page.wait_for_load_state("load")
        self.shown.append(name)
        self.page.screenshot(path=str(self.folder / f"{len(self.shown):02d}-{name}.png"), full_page=True)
        if status is not None:
            expected = f"the server responded with a status of {status}"
            assert any(expected in e for e in self.errors), f"{name}: {self.errors}"
            self.errors[:] = [e for e in self.errors if expected not in e]
        assert not self.errors, f"{name}: {self.errors}"
        found = self.page.evaluate(AUDIT)
        assert not found["problems"], f"{name}: {found['problems']}"
        assert found["first"] == "Skip to main content", f"{name}: the first Tab stop is {found['first']!r}"
        self.page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
        reached: set[str] = set()
        no_ring: list[str] = []
        wanted = set(map(str, range(found["tabbable"])))
        # A date field takes a Tab stop per part (day, month, year), so allow more presses than elements.
        for _ in range(3 * found["tabbable"] + 5):
            if reached >= wanted:
                break
            self.page.keyboard.press("Tab")
            focused = self.page.evaluate(FOCUSED)
            if focused is None or focused["index"] is None:
                continue
            reached.add(focused["index"])
            if not focused["ring"]:
                no_ring.append(f"{focused['tag']} {focused['text']!r}")
        missing = sorted(wanted - reached, key=int)
        assert not missing, f"{name}: elements not reached with Tab: {missing}"
        assert not no_ring, f"{name}: focus not visible on {no_ring}"
