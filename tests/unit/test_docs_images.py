"""No orphan image in docs/: every picture is shown by a page (README.md or docs/*.md),
so an old chart cannot linger after the page stopped showing it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif"}
# Markdown images and links: ![alt](target) or [text](target), and <img src="target">.
REFERENCE = re.compile(r"\]\(([^)\s]+)[^)]*\)|<img[^>]*\bsrc=\"([^\"]+)\"")


def referenced_images() -> set[Path]:
    found = set()
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in REFERENCE.finditer(page.read_text(encoding="utf-8")):
            target = match.group(1) or match.group(2)
            found.add((page.parent / target.split("#")[0]).resolve())
    return found


def test_every_image_under_docs_is_shown_by_a_page() -> None:
    images = {p.resolve() for p in (ROOT / "docs").rglob("*") if p.suffix in IMAGE_SUFFIXES}
    orphans = sorted(str(p.relative_to(ROOT)) for p in images - referenced_images())
    assert orphans == [], f"images no page shows (reference or delete them): {orphans}"
