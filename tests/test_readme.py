"""README.md: its results tables are the generated ones, and it stays a short page for users."""

from __future__ import annotations

import re
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import sync_readme_tables as sync  # noqa: E402

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_results_tables_are_the_generated_ones():
    assert sync.synced(README) == README, "run python scripts/sync_readme_tables.py"


def test_sync_replaces_a_stale_table_and_refuses_a_missing_marker():
    stale = README.replace("| baseline |", "| baseline (old) |", 1)
    assert stale != README and sync.synced(stale) == README
    with pytest.raises(ValueError, match="no '<!-- table: realsky"):
        sync.synced(README.replace("<!-- /table: realsky -->", ""))


def test_short_and_free_of_history_and_outside_paths():
    assert len(README.splitlines()) <= 250
    assert "../" not in README
    assert not re.search(r"\bcommit `?[0-9a-f]{7}\b|\bissue \d+|\bsession\b", README)


def test_every_relative_link_exists():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (REPO / target).exists(), target
