from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.auth import current_user
from shipyard.config import Settings
from shipyard.tracking import capture
from shipyard.tracking.capture import (
    DIFF_ARTIFACT,
    REQUIREMENTS_ARTIFACT,
    Capture,
    capture_run_context,
    strip_url_credentials,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

ONLY_GIT = Settings(capture_git=True, capture_diff=True, capture_packages=False, capture_system=False)
NOTHING = Settings(capture_git=False, capture_diff=False, capture_packages=False, capture_system=False)


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No global or system git config; a fixed identity so commits work anywhere."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "symbolic-ref", "HEAD", "refs/heads/main")
    (root / "train.py").write_text("print('hello')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


# --------------------------------------------------------------------------------------- git


@needs_git
def test_clean_repo_records_commit_branch_and_not_dirty(repo: Path) -> None:
    result = capture_run_context(ONLY_GIT, cwd=repo)

    assert result.tags["shipyard.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert len(result.tags["shipyard.git.commit"]) == 40
    assert result.tags["shipyard.git.branch"] == "main"
    assert result.tags["shipyard.git.dirty"] == "false"
    assert "shipyard.git.remote" not in result.tags
    assert DIFF_ARTIFACT not in result.artifacts


@needs_git
def test_subfolder_of_repo_is_captured(repo: Path) -> None:
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    (repo / "new.txt").write_text("x\n")

    result = capture_run_context(ONLY_GIT, cwd=sub)

    assert result.tags["shipyard.git.branch"] == "main"
    assert result.tags["shipyard.git.dirty"] == "true"
    assert b"new.txt" in result.artifacts[DIFF_ARTIFACT]  # untracked outside cwd listed too


@needs_git
def test_dirty_repo_stores_diff_with_change_and_untracked_names(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed line')\n")
    (repo / "notes.txt").write_text("secret contents of an untracked file\n")

    result = capture_run_context(ONLY_GIT, cwd=repo)

    assert result.tags["shipyard.git.dirty"] == "true"
    diff = result.artifacts[DIFF_ARTIFACT]
    assert b"-print('hello')" in diff
    assert b"+print('changed line')" in diff
    assert b"notes.txt" in diff
    assert b"secret contents" not in diff  # names only
    assert diff.index(b"diff --git") < diff.index(b"notes.txt")
    assert "shipyard.git.diff_truncated" not in result.tags


@needs_git
def test_diff_applies_cleanly_to_the_commit(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text("print('changed line')\n")
    (repo / "untracked.txt").write_text("x\n")
    diff = capture_run_context(ONLY_GIT, cwd=repo).artifacts[DIFF_ARTIFACT]

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, capture_output=True)
    (tmp_path / "p.diff").write_bytes(diff)
    git(clone, "apply", str(tmp_path / "p.diff"))
    assert (clone / "train.py").read_text() == "print('changed line')\n"


@needs_git
def test_staged_change_and_binary_file_are_in_diff(repo: Path) -> None:
    (repo / "blob.bin").write_bytes(bytes(range(256)))
    git(repo, "add", "blob.bin")

    diff = capture_run_context(ONLY_GIT, cwd=repo).artifacts[DIFF_ARTIFACT]

    assert b"blob.bin" in diff
    assert b"GIT binary patch" in diff


@needs_git
def test_only_untracked_file_makes_repo_dirty(repo: Path) -> None:
    (repo / "new.py").write_text("x = 1\n")

    result = capture_run_context(ONLY_GIT, cwd=repo)

    assert result.tags["shipyard.git.dirty"] == "true"
    assert b"new.py" in result.artifacts[DIFF_ARTIFACT]


@needs_git
def test_ignored_file_does_not_make_repo_dirty(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")
    (repo / "out.log").write_text("x\n")

    assert capture_run_context(ONLY_GIT, cwd=repo).tags["shipyard.git.dirty"] == "false"


@needs_git
def test_remote_credentials_are_stripped(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://user:secret@example.com/r.git")

    result = capture_run_context(ONLY_GIT, cwd=repo)

    assert result.tags["shipyard.git.remote"] == "https://example.com/r.git"
    assert "secret" not in repr(result)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@example.com/r.git", "https://example.com/r.git"),
        ("https://ghp_token@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://example.com:8443/r.git", "https://example.com:8443/r.git"),
        ("https://u:p@example.com:8443/r.git", "https://example.com:8443/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("ssh://git:pw@github.com/o/r.git", "ssh://github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
        ("https://example.com/r.git", "https://example.com/r.git"),
    ],
)
def test_strip_url_credentials(url: str, expected: str) -> None:
    assert strip_url_credentials(url) == expected


@needs_git
def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")

    result = capture_run_context(ONLY_GIT, cwd=repo)

    assert "shipyard.git.branch" not in result.tags
    assert result.tags["shipyard.git.commit"] == git(repo, "rev-parse", "HEAD")


@needs_git
def test_repo_without_commits_never_raises(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "symbolic-ref", "HEAD", "refs/heads/main")
    (root / "a.py").write_text("a = 1\n")
    git(root, "add", "a.py")
    (root / "b.py").write_text("b = 1\n")

    result = capture_run_context(ONLY_GIT, cwd=root)

    assert "shipyard.git.commit" not in result.tags
    assert result.tags["shipyard.git.branch"] == "main"
    assert result.tags["shipyard.git.dirty"] == "true"
    diff = result.artifacts[DIFF_ARTIFACT]
    assert b"+a = 1" in diff
    assert b"b.py" in diff


@needs_git
def test_large_diff_is_truncated(repo: Path) -> None:
    (repo / "train.py").write_text("".join(f"line {i}\n" for i in range(5000)))
    full = capture_run_context(ONLY_GIT, cwd=repo).artifacts[DIFF_ARTIFACT]

    result = capture_run_context(ONLY_GIT.replace(capture_diff_max_bytes=1000), cwd=repo)

    assert result.tags["shipyard.git.diff_truncated"] == "true"
    diff = result.artifacts[DIFF_ARTIFACT]
    body, _, last_line = diff.rstrip(b"\n").rpartition(b"\n")
    assert diff.startswith(full[:1000])
    assert len(body) <= 1001  # the kept bytes plus a newline before the note
    assert str(len(full) - 1000).encode() in last_line
    assert b"cut" in last_line


@needs_git
def test_diff_under_the_cap_is_not_truncated(repo: Path) -> None:
    (repo / "train.py").write_text("print(2)\n")
    full = capture_run_context(ONLY_GIT, cwd=repo).artifacts[DIFF_ARTIFACT]

    result = capture_run_context(ONLY_GIT.replace(capture_diff_max_bytes=len(full)), cwd=repo)

    assert result.artifacts[DIFF_ARTIFACT] == full
    assert "shipyard.git.diff_truncated" not in result.tags


def test_not_a_repo_records_no_git_and_does_not_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    # Stop git from finding a repository that happens to contain the temporary folder.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))

    result = capture_run_context(ONLY_GIT, cwd=folder)

    assert not any(key.startswith("shipyard.git.") for key in result.tags)
    assert DIFF_ARTIFACT not in result.artifacts


@pytest.fixture
def repo_or_tmp(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        return tmp_path
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q")
    return root


def test_missing_git_records_no_git(
    repo_or_tmp: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))

    result = capture_run_context(ONLY_GIT, cwd=repo_or_tmp)

    assert result == Capture(tags={}, artifacts={})


def test_missing_cwd_does_not_raise(tmp_path: Path) -> None:
    result = capture_run_context(
        Settings(capture_packages=False), cwd=tmp_path / "does-not-exist", argv=["train.py"]
    )
    assert not any(key.startswith("shipyard.git.") for key in result.tags)
    assert result.tags["shipyard.source.entry_point"] == "train.py"


@needs_git
def test_git_timeout_records_no_git(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_run(*args: object, **kwargs: object) -> object:
        assert kwargs.get("timeout") == capture.GIT_TIMEOUT_SECONDS
        raise subprocess.TimeoutExpired(cmd="git", timeout=5)

    monkeypatch.setattr(subprocess, "run", slow_run)
    result = capture_run_context(ONLY_GIT, cwd=repo)
    assert result.tags == {}


# -------------------------------------------------------------------------------- switches


@needs_git
def test_everything_on_gathers_every_part(repo: Path) -> None:
    (repo / "train.py").write_text("changed\n")

    result = capture_run_context(Settings(), cwd=repo, argv=[str(repo / "train.py"), "--lr", "0.1"])

    assert {"shipyard.git.commit", "shipyard.git.dirty", "shipyard.source.entry_point",
            "shipyard.env.python", "shipyard.user"} <= set(result.tags)
    assert set(result.artifacts) == {DIFF_ARTIFACT, REQUIREMENTS_ARTIFACT}


@needs_git
def test_everything_off_gathers_nothing(repo: Path) -> None:
    (repo / "train.py").write_text("changed\n")
    assert capture_run_context(NOTHING, cwd=repo, argv=["x.py"]) == Capture(tags={}, artifacts={})


@needs_git
def test_capture_git_off_removes_git_and_diff(repo: Path) -> None:
    (repo / "train.py").write_text("changed\n")

    result = capture_run_context(Settings(capture_git=False), cwd=repo, argv=["train.py"])

    assert not any(key.startswith("shipyard.git.") for key in result.tags)
    assert DIFF_ARTIFACT not in result.artifacts
    assert "shipyard.source.entry_point" in result.tags
    assert REQUIREMENTS_ARTIFACT in result.artifacts


@needs_git
def test_capture_diff_off_keeps_git_tags(repo: Path) -> None:
    (repo / "train.py").write_text("changed\n")

    result = capture_run_context(ONLY_GIT.replace(capture_diff=False), cwd=repo)

    assert result.tags["shipyard.git.dirty"] == "true"
    assert result.artifacts == {}


def test_capture_system_off_removes_system_tags(tmp_path: Path) -> None:
    result = capture_run_context(
        Settings(capture_system=False, capture_git=False), cwd=tmp_path, argv=["train.py"]
    )
    assert not any(key.startswith(("shipyard.source.", "shipyard.env.", "shipyard.user"))
                   for key in result.tags)
    assert REQUIREMENTS_ARTIFACT in result.artifacts


def test_capture_packages_off_removes_requirements(tmp_path: Path) -> None:
    result = capture_run_context(Settings(capture_packages=False, capture_git=False), cwd=tmp_path)
    assert REQUIREMENTS_ARTIFACT not in result.artifacts


# ---------------------------------------------------------------------------------- system

SYSTEM = Settings(capture_git=False, capture_packages=False)


def test_system_tags(tmp_path: Path) -> None:
    script = tmp_path / "jobs" / "train.py"
    result = capture_run_context(SYSTEM, cwd=tmp_path, argv=[str(script), "--name", "a b", "--lr=0.1"])

    tags = result.tags
    assert tags["shipyard.source.entry_point"] == "jobs/train.py"
    assert tags["shipyard.source.argv"] == "--name 'a b' --lr=0.1"
    assert tags["shipyard.env.python"] == ".".join(map(str, sys.version_info[:3]))
    assert tags["shipyard.env.platform"]
    assert tags["shipyard.env.hostname"]
    assert tags["shipyard.user"] == current_user()


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("train.py", "train.py"),
        ("./jobs/../train.py", "train.py"),
        ("", "<interactive>"),
        ("-c", "<interactive>"),
        ("-", "<interactive>"),
        ("/opt/venv/bin/ipython", "<interactive>"),
        ("/opt/venv/lib/python3.11/site-packages/ipykernel_launcher.py", "<notebook>"),
        ("/opt/venv/lib/python3.11/site-packages/ipykernel/__main__.py", "<notebook>"),
    ],
)
def test_entry_point(tmp_path: Path, argv0: str, expected: str) -> None:
    result = capture_run_context(SYSTEM, cwd=tmp_path, argv=[argv0, "-f", "/tmp/kernel.json"])
    assert result.tags["shipyard.source.entry_point"] == expected


def test_entry_point_outside_cwd_is_absolute(tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    script = tmp_path / "elsewhere" / "train.py"

    result = capture_run_context(SYSTEM, cwd=cwd, argv=[str(script)])

    assert result.tags["shipyard.source.entry_point"] == str(script)


def test_empty_argv_is_interactive(tmp_path: Path) -> None:
    result = capture_run_context(SYSTEM, cwd=tmp_path, argv=[])
    assert result.tags["shipyard.source.entry_point"] == "<interactive>"
    assert result.tags["shipyard.source.argv"] == ""


def test_notebook_does_not_record_kernel_argv(tmp_path: Path) -> None:
    result = capture_run_context(SYSTEM, cwd=tmp_path, argv=["/x/ipykernel_launcher.py", "-f", "k.json"])
    assert "shipyard.source.argv" not in result.tags


def test_argv_is_capped(tmp_path: Path) -> None:
    result = capture_run_context(SYSTEM, cwd=tmp_path, argv=["t.py", *(["--flag"] * 500)])
    assert len(result.tags["shipyard.source.argv"]) == capture.ARGV_MAX_CHARS
    assert result.tags["shipyard.source.argv"].startswith("--flag --flag")


def test_default_argv_is_sys_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "run.py"), "--x", "1"])
    result = capture_run_context(SYSTEM, cwd=tmp_path)
    assert result.tags["shipyard.source.entry_point"] == "run.py"
    assert result.tags["shipyard.source.argv"] == "--x 1"



# -------------------------------------------------------------------------------- packages


def test_packages_artifact_lists_installed_distributions(tmp_path: Path) -> None:
    result = capture_run_context(Settings(capture_git=False, capture_system=False), cwd=tmp_path)

    text = result.artifacts[REQUIREMENTS_ARTIFACT].decode()
    lines = text.splitlines()
    assert any(line.startswith("pytest==") for line in lines)
    assert all("==" in line for line in lines)
    keys = [line.split("==")[0].lower().replace("_", "-").replace(".", "-") for line in lines]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))
    assert text.endswith("\n")


def test_packages_are_cached_per_process(tmp_path: Path) -> None:
    first = capture_run_context(Settings(capture_git=False, capture_system=False), cwd=tmp_path)
    second = capture_run_context(Settings(capture_git=False, capture_system=False), cwd=tmp_path)
    assert first.artifacts[REQUIREMENTS_ARTIFACT] is second.artifacts[REQUIREMENTS_ARTIFACT]
    assert capture.installed_packages.cache_info().hits >= 1


# ---------------------------------------------------------------------------------- import


def test_module_import_is_light() -> None:
    code = (
        "import sys\n"
        "heavy = ('subprocess', 'importlib.metadata', 'platform', 'socket', 'getpass', 'shlex')\n"
        "before = {m for m in heavy if m in sys.modules}\n"
        "import shipyard.tracking.capture\n"
        "print(sorted(m for m in heavy if m in sys.modules and m not in before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
