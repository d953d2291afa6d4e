"""Rehash every output recorded in dvc.lock, in the workspace and in the DVC cache, and name the fix.

Usage: cosmic-verify [--repo DIR] [--repair]

DVC trusts its mtime/inode state database and never rehashes a file it has seen, so a flipped byte
in a cache object goes unnoticed: `dvc status` says up to date, and `dvc repro -f` retrains and then
links the corrupt object back, since an object with the right name is never replaced. This reads
every output of every stage in dvc.lock, hashes (DVC's own md5) its workspace copy against
dvc.lock and each cache object against the md5 its name claims, and prints one line per problem
with the commands that repair it. --repair moves corrupt cache objects aside, copies good
workspace copies back into the cache and restores corrupt workspace files from good objects.
Exit status: 0 all match, 1 problems, 2 usage error (not a DVC repository, no dvc.lock).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cosmic.cli import program_name

if TYPE_CHECKING:
    from dvc.output import Output
    from dvc.repo import Repo
    from dvc_objects.fs.base import FileSystem


class UsageError(Exception):
    """The directory is not a DVC repository, or has no dvc.lock to verify against."""


@dataclass
class Problem:
    """One corrupt file, with the commands that repair it and what --repair needs to do so."""

    path: str  # the workspace file concerned, relative to the repository root
    message: str
    fix: str
    output: Output
    corrupt_object: str | None = None  # a cache object to move aside
    oid: str | None = None  # the name of that object
    good_copy: tuple[FileSystem, str] | None = None  # the object's right content, to copy back
    corrupt_file: str | None = None  # a workspace file to restore from its good cache object

    def __str__(self) -> str:
        return f"{self.path}: {self.message}; fix: {self.fix}"


@dataclass
class Report:
    """What one pass over the outputs found."""

    outputs: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = f"{self.outputs} outputs, {self.files} files checked"
        if self.problems:
            return f"{head}: {len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}"
        notes = f" ({len(self.notes)} note{'s' if len(self.notes) > 1 else ''} above)" if self.notes else ""
        return f"{head}: all match dvc.lock{notes}"


class Hasher:
    """DVC's hash of a file, computed once per file even when it has several names (links)."""

    def __init__(self) -> None:
        self._hashes: dict[tuple[int, int, int, int, str], str] = {}

    def __call__(self, path: str, name: str) -> str | None:
        """The hash `name` (md5, or md5-dos2unix for DVC 2 outputs) of `path`; None if it does not exist."""
        from dvc_data.hashfile.hash import file_md5

        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, name)
        if key not in self._hashes:
            self._hashes[key] = file_md5(path, name=name)
        return self._hashes[key]

    @property
    def count(self) -> int:
        return len(self._hashes)


def open_repo(root: str | None) -> Repo:
    """The DVC repository at or above `root` (default: the working directory).

    Raises:
        UsageError: there is no DVC repository there, or it has no dvc.lock.
    """
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(root)
    except NotDvcRepoError as e:
        raise UsageError(f"not a DVC repository: {e}") from None
    if not os.path.isfile(os.path.join(repo.root_dir, "dvc.lock")):
        repo.close()
        raise UsageError(f"no dvc.lock in {repo.root_dir}: nothing to verify (run `dvc repro` first)")
    return repo


def lock_outputs(repo: Repo) -> list[Output]:
    """The outputs of the dvc.yaml stages that dvc.lock records, in pipeline order."""
    from dvc.stage import PipelineStage

    return [out for stage in repo.index.stages if isinstance(stage, PipelineStage)
            for out in stage.outs if out.hash_info]


def rerun(out: Output) -> str:
    """The command that runs an output's stage again, from the repository root."""
    from dvc.dvcfile import PROJECT_FILE

    stage = out.stage
    address = stage.name if stage.path_in_repo == PROJECT_FILE else f"{stage.path_in_repo}:{stage.name}"
    return f"dvc repro -f {shlex.quote(address)}"


class Verifier:
    """Checks outputs against dvc.lock and the cache, collecting problems and notes in a Report."""

    def __init__(self, repo: Repo, prog: str) -> None:
        self.repo = repo
        self.prog = prog
        self.remote = repo.config["core"].get("remote")
        self.hash = Hasher()
        self.report = Report()

    def rel(self, path: str) -> str:
        """`path` relative to the repository root when inside it, as the commands printed take it."""
        inside = os.path.commonpath([self.repo.root_dir, os.path.abspath(path)]) == self.repo.root_dir
        return os.path.relpath(path, self.repo.root_dir) if inside else path

    def regenerate(self, out: Output) -> str:
        """The command that brings back an output whose cache object is gone: from the remote, or rerun."""
        if self.remote:
            return f"dvc pull {shlex.quote(self.rel(out.fs_path))}"
        return rerun(out)

    def check(self, out: Output) -> None:
        """Check one output, a file or a directory."""
        self.report.outputs += 1
        if out.hash_info.isdir:
            self._check_dir(out)
            return
        ws, obj = self._check_file(out, out.fs_path, out.hash_info.value)
        if ws is None:
            self.report.notes.append(f"{self.rel(out.fs_path)}: missing")
        if out.use_cache and obj is None:
            self.report.notes.append(f"{self.rel(out.fs_path)}: not in the local cache")

    def _check_file(self, out: Output, path: str, oid: str) -> tuple[str | None, str | None]:
        """Hash a workspace file and its cache object against `oid`, adding a problem if either is wrong.

        Returns:
            The hashes of the workspace file and of the cache object, None for those that are missing.
        """
        name = out.hash_name
        ws = self.hash(path, name)
        obj_path = out.cache.oid_to_path(oid) if out.use_cache else None
        obj = self.hash(obj_path, name) if obj_path else None
        shown, target = self.rel(path), shlex.quote(self.rel(out.fs_path))
        if obj is not None and obj != oid:
            linked = ws is not None and os.path.samefile(path, obj_path)
            rm = [obj_path] + ([path] if ws is not None and ws != oid and not linked else [])
            message = f"cache object {self.rel(obj_path)} is corrupt (md5 {obj}, its name says {oid})"
            if linked:
                message += ", and so is the workspace copy (the same file)"
            elif ws is not None and ws != oid:
                message += f", and so is the workspace copy (md5 {ws})"
            # DVC never replaces an object that has the right name, so it goes before anything is rebuilt.
            fix = f"rm -f {' '.join(shlex.quote(self.rel(p)) for p in rm)} && {self.regenerate(out)}"
            good = ws == oid and not linked
            if good:
                fix += f" (or `{self.prog} --repair`, which copies the good workspace copy back into the cache)"
            self.report.problems.append(Problem(shown, message, fix, out, corrupt_object=obj_path, oid=oid,
                                                good_copy=(out.fs, path) if good else None))
        elif ws is not None and ws != oid:
            message = f"workspace copy is corrupt (md5 {ws}, expected {oid})"
            if obj == oid:
                # Removed first: a byte flipped in place keeps the mtime, and DVC would trust its state database.
                fix = f"rm -f {shlex.quote(shown)} && dvc checkout --force {target}"
                self.report.problems.append(Problem(shown, message, fix, out, corrupt_file=path))
            elif out.use_cache:
                fix = f"rm -f {shlex.quote(shown)} && {self.regenerate(out)}"
                self.report.problems.append(Problem(shown, message, fix, out))
            else:
                message = f"does not match dvc.lock (md5 {ws}, expected {oid}; not cached)"
                self.report.problems.append(Problem(shown, message, rerun(out), out))
        return ws, obj

    def _check_dir(self, out: Output) -> None:
        """Check a directory output file by file against the cache's listing, or as a whole without it."""
        from dvc_data.hashfile.hash_info import HashInfo
        from dvc_data.hashfile.tree import Tree

        oid, name, shown = out.hash_info.value, out.hash_name, self.rel(out.fs_path)
        listing = corrupt = None
        if out.use_cache:
            obj_path = out.cache.oid_to_path(oid)
            actual = self.hash(obj_path, name)
            if actual is None:
                self.report.notes.append(f"{shown}: not in the local cache")
            elif actual + ".dir" != oid:
                corrupt = f"{actual}.dir"
            else:
                listing = {"/".join(key): hi.value for key, _, hi in Tree.load(out.cache, out.hash_info)}
        files = ({os.path.relpath(p, out.fs_path).replace(os.sep, "/"): p
                  for p in self.repo.dvcignore.find(self.repo.fs, out.fs_path)}
                 if os.path.isdir(out.fs_path) else None)
        if files is None:
            self.report.notes.append(f"{shown}: missing")

        tree = None
        if listing is None and files is not None:
            # Without a trustworthy listing the directory can still be hashed as DVC hashes it.
            tree = Tree()
            for rel, path in files.items():
                tree.add(tuple(rel.split("/")), None, HashInfo(name, self.hash(path, name)))
            tree.digest(name=name)
            if tree.hash_info.value != oid:
                message = f"contents do not match dvc.lock (md5 {tree.hash_info.value}, expected {oid})"
                fix = self.regenerate(out) if out.use_cache else rerun(out)
                self.report.problems.append(Problem(shown, message, fix, out))
        if corrupt:
            good = tree is not None and tree.hash_info.value == oid
            message = f"cache object {self.rel(obj_path)} (the directory's listing) is corrupt " \
                      f"(md5 {corrupt}, its name says {oid})"
            fix = f"rm -f {shlex.quote(self.rel(obj_path))} && {self.regenerate(out)}"
            if good:
                fix += f" (or `{self.prog} --repair`, which rebuilds it from the good workspace copy)"
            self.report.problems.append(Problem(shown, message, fix, out, corrupt_object=obj_path, oid=oid,
                                                good_copy=(tree.fs, tree.path) if good else None))
        if listing is None:
            return

        missing, uncached = [], []
        for rel, file_oid in listing.items():
            path = os.path.join(out.fs_path, *rel.split("/"))
            ws, obj = self._check_file(out, path, file_oid)
            if ws is None:
                missing.append(self.rel(path))
            if obj is None:
                uncached.append(self.rel(path))
        extra = sorted(set(files or ()) - set(listing))
        n = len(listing)
        if missing and files is not None:
            self.report.notes.append(f"{shown}: {len(missing)} of {n} files missing (e.g. {missing[0]})")
        if uncached:
            self.report.notes.append(f"{shown}: {len(uncached)} of {n} files not in the local cache "
                                     f"(e.g. {uncached[0]})")
        if extra:
            self.report.notes.append(f"{shown}: {len(extra)} files not in dvc.lock (e.g. {shown}/{extra[0]})")


def verify(repo: Repo, outputs: list[Output], prog: str) -> Report:
    """Check every output, hashing each file once."""
    verifier = Verifier(repo, prog)
    for out in outputs:
        verifier.check(out)
    verifier.report.files = verifier.hash.count
    return verifier.report


def repair(repo: Repo, problems: list[Problem]) -> list[str]:
    """Move corrupt cache objects aside, restore them and corrupt workspace files from good copies.

    Returns:
        One line per action taken or failed; what is left is found by verifying again.
    """
    from dvc.exceptions import DvcException

    done = []
    root = repo.root_dir
    for p in problems:
        if p.corrupt_object:
            aside = p.corrupt_object + ".corrupt"
            # Kept, not deleted, for inspection; `dvc gc` removes it as an unused object.
            os.replace(p.corrupt_object, aside)
            done.append(f"repaired: moved corrupt cache object {os.path.relpath(p.corrupt_object, root)} aside to "
                        f"{os.path.relpath(aside, root)}")
            if p.good_copy:
                fs, path = p.good_copy
                p.output.cache.add(path, fs, p.oid)
                done.append(f"repaired: restored cache object {os.path.relpath(p.corrupt_object, root)} from the "
                            f"workspace copy of {p.path}")
    to_checkout = {}
    for p in problems:
        if p.corrupt_file:
            # Removed first: a byte flipped in place keeps the mtime, and DVC would trust its state database.
            os.unlink(p.corrupt_file)
            to_checkout[p.output.fs_path] = p
    for fs_path, p in to_checkout.items():
        target = os.path.relpath(fs_path, root)
        try:
            repo.checkout(targets=[fs_path], force=True)
            done.append(f"repaired: restored {target} from the cache (dvc checkout --force {target})")
        except DvcException as e:
            done.append(f"could not restore {target} from the cache: {e}")
    return done


def main(argv: list[str] | None = None) -> int:
    """Command line: verify the outputs of dvc.lock, print the problems and their fixes, repair on request.

    Args:
        argv: arguments without the program name; None reads `sys.argv`.

    Returns:
        0 when every output matches dvc.lock, 1 when problems remain, 2 on usage errors.
    """
    from dvc.exceptions import DvcException

    prog = program_name("verify")
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--repo", metavar="DIR", help="the DVC repository (default: the one holding the working "
                                                  "directory)")
    ap.add_argument("--repair", action="store_true",
                    help="move corrupt cache objects aside and restore what good copies allow")
    args = ap.parse_args(argv)
    try:
        repo = open_repo(args.repo)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    with repo:
        try:
            outputs = lock_outputs(repo)
            if Path(repo.root_dir).resolve() != Path.cwd().resolve():
                print(f"(paths and commands below are relative to {repo.root_dir})")
            report = verify(repo, outputs, prog)
            # Two rounds: a directory's listing restored in the first can reveal corrupt files in it.
            for _ in range(2 if args.repair else 0):
                repairable = [p for p in report.problems if p.corrupt_object or p.corrupt_file]
                if not repairable:
                    break
                for problem in report.problems:
                    print(problem)
                for action in repair(repo, repairable):
                    print(action)
                report = verify(repo, outputs, prog)
        except (DvcException, OSError) as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 2
    for note in report.notes:
        print(f"note: {note}")
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
