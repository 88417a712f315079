"""Print the third-party requirements of the CareCircle components, one per line.

The components depend on each other through direct file references (so that
``pip install ./gateway`` works on its own).  A development install instead
installs every component editable with ``--no-deps``; this script supplies the
third-party requirements those editables would otherwise have pulled in.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def third_party_requirements(components: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for component in components:
        data = tomllib.loads((ROOT / component / "pyproject.toml").read_text())
        for req in data["project"].get("dependencies", []):
            if req.startswith("carecircle-"):
                continue
            seen.setdefault(req, None)
    return list(seen)


if __name__ == "__main__":
    sys.stdout.write("\n".join(third_party_requirements(sys.argv[1:])) + "\n")
