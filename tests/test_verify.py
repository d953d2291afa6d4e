"""cosmic-verify: outputs rehashed against dvc.lock and the cache, each problem named with its fix.

Each test builds a tiny git + DVC repository in tmp_path: one stage writing a file (out.txt), a
folder of two files and an uncached metrics file, reproduced by the virtualenv's own `dvc`. It
then breaks the repository the way disks and careless edits do, behind DVC's back.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cosmic.commands import verify

# DVC's own checkout (in --repair) trips pygtrie's deprecation; nothing this project can change.
pytestmark = pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")

VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin, whose python is this interpreter
DVC = Path(sys.executable).with_name("dvc")
CONTENTS = {"out.txt": b"hello\n", "folder/a.txt": b"alpha\n", "folder/b.txt": b"beta\n",
            "metrics.json": b'{"n": 2}\n'}
WRITE = "; ".join(["from pathlib import Path as P", "P('folder').mkdir(exist_ok=True)"]
                  + [f"P({path!r}).write_bytes({data!r})" for path, data in CONTENTS.items()])
DVC_YAML = {"stages": {"make": {"cmd": f"python -c {shlex.quote(WRITE)}", "outs": ["out.txt", "folder"],
                                "metrics": [{"metrics.json": {"cache": False}}]}}}
CLEAN = "3 outputs, 8 files checked: all match dvc.lock"  # 4 workspace files, 3 cache objects and a listing


def run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def cache_object(root: Path, data: bytes) -> Path:
    md5 = hashlib.md5(data).hexdigest()
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def flip_byte(path: Path) -> None:
    """Flip one bit of the first byte in place, as a failing disk would: same inode and mode.

    The mode matters: DVC rehashes a cache object only when it is not read-only.
    """
    mode = path.stat().st_mode
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(mode)


def overwrite(path: Path, data: bytes) -> None:
    """Replace a workspace file; unlinked first since it may be a link to its cache object."""
    path.unlink()
    path.write_bytes(data)


def check(capsys, *args: str) -> tuple[int, str]:
    code = verify.main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out


@pytest.fixture
def dvc_env(tmp_path, monkeypatch) -> None:
    """The venv's python on PATH for stage commands, and DVC's state database inside tmp_path."""
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    # Rather than the shared /var/tmp/dvc.
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site-cache"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


@pytest.fixture
def repo(tmp_path, monkeypatch, dvc_env) -> Path:
    """A reproduced one-stage DVC repository, as the working directory."""
    root = tmp_path / "repo"
    root.mkdir()
    run("git", "init", "-q", cwd=root)
    run(DVC, "init", "-q", cwd=root)
    (root / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    run(DVC, "repro", "-q", cwd=root)
    monkeypatch.chdir(root)
    return root


def test_a_clean_repository_matches_dvc_lock(repo, capsys):
    assert check(capsys) == (0, CLEAN + "\n")


def test_a_corrupt_cache_object_is_named_with_its_removal_first(repo, capsys):
    obj = cache_object(repo, CONTENTS["out.txt"])
    flip_byte(obj)
    assert "up to date" in run(DVC, "status", cwd=repo)  # what the user saw: DVC trusts its state database
    code, out = check(capsys)
    rel = obj.relative_to(repo)
    assert code == 1
    assert f"out.txt: cache object {rel} is corrupt (md5 {hashlib.md5(obj.read_bytes()).hexdigest()}, " \
           f"its name says {obj.parent.name}{obj.name})" in out
    assert f"fix: rm -f {rel} && dvc repro -f make" in out
    assert out.endswith(": 1 problem\n")


def test_a_corrupt_workspace_file_is_restored_by_checkout(repo, capsys):
    overwrite(repo / "out.txt", b"jello\n")
    code, out = check(capsys)
    assert code == 1
    assert "out.txt: workspace copy is corrupt" in out
    assert "fix: rm -f out.txt && dvc checkout --force out.txt" in out


def test_corrupt_files_inside_a_directory_output_are_found(repo, capsys):
    overwrite(repo / "folder" / "a.txt", b"alphA\n")
    flip_byte(cache_object(repo, CONTENTS["folder/b.txt"]))
    code, out = check(capsys)
    assert code == 1
    assert "folder/a.txt: workspace copy is corrupt" in out
    assert "fix: rm -f folder/a.txt && dvc checkout --force folder" in out
    assert "folder/b.txt: cache object .dvc/cache/files/md5/" in out
    assert out.endswith(": 2 problems\n")


def test_missing_files_and_cache_objects_are_notes_not_problems(repo, capsys):
    (repo / "out.txt").unlink()
    (repo / "folder" / "b.txt").unlink()
    cache_object(repo, CONTENTS["folder/a.txt"]).unlink()
    code, out = check(capsys)
    assert code == 0
    assert "note: out.txt: missing\n" in out
    assert "note: folder: 1 of 2 files missing (e.g. folder/b.txt)\n" in out
    assert "note: folder: 1 of 2 files not in the local cache (e.g. folder/a.txt)\n" in out
    assert "all match dvc.lock (3 notes above)" in out


def test_repair_restores_cache_objects_and_workspace_files_from_good_copies(repo, capsys):
    obj = cache_object(repo, CONTENTS["out.txt"])
    flip_byte(obj)
    overwrite(repo / "folder" / "a.txt", b"alphA\n")
    code, out = check(capsys, "--repair")
    assert code == 0, out
    rel = obj.relative_to(repo)
    assert f"repaired: moved corrupt cache object {rel} aside to {rel}.corrupt\n" in out
    assert f"repaired: restored cache object {rel} from the workspace copy of out.txt\n" in out
    assert "repaired: restored folder from the cache (dvc checkout --force folder)\n" in out
    assert obj.read_bytes() == CONTENTS["out.txt"]
    assert (repo / "folder" / "a.txt").read_bytes() == CONTENTS["folder/a.txt"]
    assert check(capsys) == (0, CLEAN + "\n")


def test_a_corrupt_directory_listing_is_rebuilt_by_repair(repo, capsys):
    md5 = hashlib.md5((repo / "dvc.lock").read_bytes()).hexdigest()  # unchanged by the repair
    listing = next((repo / ".dvc" / "cache").rglob("*.dir"))
    flip_byte(listing)
    code, out = check(capsys)
    assert code == 1 and f"folder: cache object {listing.relative_to(repo)} (the directory's listing) is corrupt" in out
    code, out = check(capsys, "--repair")
    assert code == 0 and "repaired: restored cache object" in out
    assert check(capsys) == (0, CLEAN + "\n")
    assert hashlib.md5((repo / "dvc.lock").read_bytes()).hexdigest() == md5


def test_with_linked_cache_repair_leaves_a_rerun_that_no_longer_restores_the_corruption(repo, capsys):
    run(DVC, "config", "cache.type", "hardlink", cwd=repo)
    run(DVC, "checkout", "--relink", "-q", cwd=repo)
    obj = cache_object(repo, CONTENTS["out.txt"])
    flip_byte(obj)
    code, out = check(capsys)
    assert code == 1 and "and so is the workspace copy (the same file)" in out
    assert "3 outputs, 5 files checked" in out  # each linked pair hashed once
    code, out = check(capsys, "--repair")
    assert code == 1
    assert "note: out.txt: not in the local cache\n" in out
    assert "out.txt: workspace copy is corrupt" in out and "fix: rm -f out.txt && dvc repro -f make" in out
    run(DVC, "repro", "-q", "-f", "make", cwd=repo)
    assert check(capsys)[0] == 0
    assert obj.read_bytes() == CONTENTS["out.txt"]


def test_no_repository_or_no_dvc_lock_is_a_one_line_usage_error(tmp_path, monkeypatch, dvc_env, capsys):
    monkeypatch.chdir(tmp_path)
    done = subprocess.run([sys.executable, "-m", "cosmic.commands.verify"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(verify.__file__).parents[1])})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("python -m cosmic.commands.verify: error: not a DVC repository")
    run("git", "init", "-q", cwd=tmp_path)
    run(DVC, "init", "-q", cwd=tmp_path)
    assert verify.main([]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m cosmic.commands.verify: error: no dvc.lock in {tmp_path}: nothing to verify " \
                  "(run `dvc repro` first)\n"
