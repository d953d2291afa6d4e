"""Check params.yaml, with the `-S` overrides a `dvc exp run` would apply, in seconds and before a long run.

Usage: cosmic-check-params [--params FILE] [-S section.key=value ...]

Every section is validated as its stage will validate it; each problem is printed on one line
naming the key, its value and what was expected, then the key's help. Exit status: 0 valid, 1 invalid,
2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cosmic import params
from cosmic.cli import program_name

# Each section's validator: the same functions the stages call.
VALIDATORS = params.SECTIONS


def apply_override(raw: dict, assignment: str) -> None:
    """Set one `section.key=value` in `raw` as `dvc exp run -S` does (the value read as YAML).

    Raises:
        ParamError: the assignment has no '=' or no key, or goes through a key that is not a mapping.
    """
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise params.ParamError(f"-S {assignment!r}: expected section.key=value")
    try:
        value = yaml.load(text, Loader=params._Loader)  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError:
        value = text
    *parents, leaf = key.strip().split(".")
    node = raw
    for i, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise params.ParamError(f"-S {assignment!r}: '{'.'.join(parents[:i + 1])}' is not a section")
    node[leaf] = value


def problems(raw: Mapping[str, Any], path: Path | str) -> list[params.ParamError]:
    """The first problem of every section, each once; empty when the params are valid."""
    try:
        params.check_keys(raw, path)
    except params.ParamError as e:
        return [e]
    found: list[params.ParamError] = []
    for validate in VALIDATORS.values():
        try:
            validate(raw)
        except params.ParamError as e:
            if all(str(e) != str(f) for f in found):  # stages that read `base` too report its problem again
                found.append(e)
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=program_name("check_params"), description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=params.PARAMS_FILE, help="params file (default: params.yaml)")
    ap.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="an override, as `dvc exp run -S` takes it (repeatable)")
    args = ap.parse_args(argv)
    try:
        raw = params.load(args.params)
        for assignment in args.overrides:
            apply_override(raw, assignment)
    except params.ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    found = problems(raw, args.params)
    what = f"{args.params}" + (f" with {len(args.overrides)} override(s)" if args.overrides else "")
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
        if help_text := params.help_of(problem.key or ""):
            print(f"       {problem.key}: {help_text}", file=sys.stderr)
    if found:
        print(f"{what}: {len(found)} problem(s)", file=sys.stderr)
        return 1
    print(f"{what}: valid ({len(VALIDATORS)} sections checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
