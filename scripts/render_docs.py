"""Write docs/checks.md from the check registry: python scripts/render_docs.py"""

from pathlib import Path

from rundoctor.checks.registry import REGISTRY
from rundoctor.docs import render_checks

target = Path(__file__).resolve().parents[1] / "docs" / "checks.md"
target.write_text(render_checks(REGISTRY), encoding="utf-8")
print(f"wrote {target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target}")
