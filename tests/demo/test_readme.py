"""README keeps its promises: it starts with the two commands (the demo, then the
test command in the block CI extracts), and its configuration reference lists every
setting, and no setting that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from settlement.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_configuration_lists_every_setting() -> None:
    table = _section(README.read_text(encoding="utf-8"), "Configuration")
    listed = re.findall(r"^\| `SETTLEMENT_([A-Z0-9_]+)` \|", table, flags=re.MULTILINE)
    fields = {name.upper() for name in Settings.model_fields}
    assert sorted(fields - set(listed)) == [], "settings missing from README's configuration table"
    assert sorted(set(listed) - fields) == [], "README lists settings that do not exist"
    assert len(listed) == len(set(listed)), "a setting is listed twice"


def test_starts_with_the_demo_then_the_ci_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)\n```", text, flags=re.DOTALL)
    assert blocks[0].endswith("pip install -e . && settlement demo")
    marker = text.index("<!-- ci: test command -->")
    after = text[marker:].split("\n")
    assert after[1] == "```sh"
    assert after[2] == blocks[1]
    assert after[2].endswith("pytest -n 2")
    assert text.index("settlement demo") < marker
