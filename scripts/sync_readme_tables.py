"""Copy the generated results tables into README.md, between their markers.

Usage: python scripts/sync_readme_tables.py [--check]

README.md holds two tables that the pipeline and a benchmark write: the model table of
metrics/report.md (written by `evaluate`) and docs/tables/realsky.md (written by
`python benchmarks/bench_realsky.py --real DIR --output docs/tables/realsky.md`). Each sits between
`<!-- table: NAME ... -->` and `<!-- /table: NAME -->`. --check changes nothing and exits 1 when
README.md differs from them (tests/test_readme.py runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = {"synthetic": REPO / "metrics" / "report.md", "realsky": REPO / "docs" / "tables" / "realsky.md"}


def first_table(markdown: str, source: Path) -> str:
    """The first Markdown table (consecutive lines starting with '|') of a document.

    Raises:
        ValueError: the document has no table.
    """
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise ValueError(f"{source}: no Markdown table found")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def synced(readme: str) -> str:
    """README text with every marked table replaced by its generated version.

    Raises:
        ValueError: a marker pair is missing from the README.
    """
    for name, source in SOURCES.items():
        pattern = re.compile(rf"(<!-- table: {name}\b[^\n]*-->\n)(.*?)(\n<!-- /table: {name} -->)", re.S)
        if not pattern.search(readme):
            raise ValueError(f"README.md: no '<!-- table: {name} ... -->' ... '<!-- /table: {name} -->' block")
        table = first_table(source.read_text(encoding="utf-8"), source)
        readme = pattern.sub(lambda m: m.group(1) + table + m.group(3), readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report whether README.md is in sync")
    args = ap.parse_args(argv)
    path = REPO / "README.md"
    text = path.read_text(encoding="utf-8")
    new = synced(text)
    if args.check:
        if new != text:
            print("README.md: a results table differs from the generated one; run "
                  "python scripts/sync_readme_tables.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        path.write_text(new, encoding="utf-8")
        print("README.md: tables updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
