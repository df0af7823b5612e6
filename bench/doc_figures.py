"""Replace one bench's figures block in docs/benchmarks.md, leaving the rest of the reference untouched.

Each section of docs/benchmarks.md that a script may update holds its figures (command, date, tables)
between ``<!-- bench:<name>:begin -->`` and ``<!-- bench:<name>:end -->``. The prose around the block (what is
measured, the target, how to read it) is written by hand and never rewritten by a script.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the command line of a figures block."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def replace_block(name: str, block: str, path: Path = DOC) -> bool:
    """Put ``block`` between the ``name`` markers of ``path``; False (nothing written) if they are missing."""
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if len(pattern.findall(text)) != 1:
        return False
    path.write_text(pattern.sub(lambda _: f"{begin}\n{block.strip()}\n{end}", text))
    return True
