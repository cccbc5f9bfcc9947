"""Where the tests find the repository and ../shared (read in place, never copied into the project)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DYMESH_SHARED", REPO.parent / "shared")).resolve()
ASSETS = SHARED / "assets"
REFERENCE = SHARED / "reference"
BROKEN = ASSETS / "broken"
