"""Every command in README.md and docs/*.md runs as written.

Commands are the lines of ```bash blocks and the inline code spans that start with a program. They are run
from a fresh copy of the repository's layout (its files linked into a temporary folder), so a command that
only works after another one fails here:

- ``snakemake …`` as written plus ``-n`` (a dry run: the config check, every input check and the DAG);
  the example configs' data paths (``data/…``) get a minimal fake of each dataset's layout first. A
  ``--report`` command needs the finished outputs, so here it is dry-run without ``--report <file>``, and
  tests/test_workflow.py renders the report for real;
- ``make …`` as ``make -n …`` (what it would run);
- ``python -m sslfer …`` and ``python benchmarks/….py …`` as written plus ``--help`` (the program and its
  arguments parse; the commands themselves take minutes and are run by their own tests); ``python -c``
  code is compiled, not run (the docs' examples fetch weights, which tests never do);
- a few shell lines of the user's own set-up (``source``, ``cd``, ``ln``, ``mkdir``, ``sha256sum``, …) are not run.
A line with another program fails the test: give it a way to be checked here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = ("snakemake", "make", "python")
NOT_RUN = ("source", "cd", "ln", "mkdir", "export", "pip", "sha256sum", "unzip")
FENCES = ("bash", "sh", "shell", "console")


def _is_command(text: str) -> bool:
    return text.split()[0] in RUN + NOT_RUN if text.strip() else False


def doc_commands() -> list[tuple[str, str]]:
    """(``file:line``, command) of every command in the docs."""
    found = []
    for doc in DOCS:
        fence = None
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fence = None if fence is not None else line.strip()[3:].strip()
                continue
            where = f"{doc.relative_to(REPO)}:{n}"
            if fence is not None:
                text = line.strip()
                if fence in FENCES and text and not text.startswith("#"):
                    found.append((where, " ".join(shlex.split(text, comments=True))))
            else:
                found += [(where, span) for span in re.findall(r"`([^`\n]+)`", line)
                          if span.split()[0] in RUN and (span.split()[0] != "python" or " " in span)]
    return found


COMMANDS = doc_commands()


def test_the_docs_have_commands():
    assert len(COMMANDS) >= 10 and any("--configfile config/voxceleb.yaml" in c for _, c in COMMANDS)


def _fake_dataset_tree(config_files: list[Path], root: Path) -> None:
    """For each corpus/dataset of the config files whose path is relative (``data/…``): the files that the
    config check looks at, with headers and one placeholder row (enough for a dry run, not for a real one)."""
    for cfg_file in config_files:
        cfg = yaml.safe_load(cfg_file.read_text()) or {}
        for corpus in (cfg.get("corpora") or {}).values():
            path = root / corpus["path"]
            if Path(corpus["path"]).is_absolute() or path.exists():
                continue
            if corpus["format"] == "csv":
                path.parent.mkdir(parents=True, exist_ok=True)
                for who in ("alice", "bob"):
                    (path.parent / f"{who}_1.mp4").write_bytes(b"placeholder")
                path.write_text("path,identity\nalice_1.mp4,alice\nbob_1.mp4,bob\n")
            elif corpus["format"] == "frame_tree":
                (path / "Some_Name" / "1.6" / "abcdefghijk" / "1").mkdir(parents=True)
                (path / "Some_Name" / "1.6" / "abcdefghijk" / "1" / "1.jpg").write_bytes(b"placeholder")
            else:
                (path / "id00001" / "abcdefghijk").mkdir(parents=True)
                (path / "id00001" / "abcdefghijk" / "00001.mp4").write_bytes(b"placeholder")
            if "meta" in corpus and not Path(corpus["meta"]).is_absolute():
                meta = root / corpus["meta"]
                meta.parent.mkdir(parents=True, exist_ok=True)
                meta.write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\nid10001\tSome_Name\tm\tX\tdev\n")
        for ds in (cfg.get("datasets") or {}).values():
            rel = ds.get("path", ds.get("data_home"))
            path = root / rel
            if Path(rel).is_absolute() or path.exists():
                continue
            if "data_home" in ds:
                (path / "lfw_home" / "lfw_funneled").mkdir(parents=True)
                (path / "lfw_home" / "pairs.txt").write_text("10 300\n")
            elif ds.get("format", "").startswith("affectnet"):
                (path / "Manually_Annotated_Images").mkdir(parents=True)
                (path / "Manually_Annotated_file_lists").mkdir()
                for name in ("training.csv", "validation.csv"):
                    (path / "Manually_Annotated_file_lists" / name).write_text(
                        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,"
                        "valence,arousal\n")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("emotion,pixels,Usage\n")


@pytest.fixture
def fresh_checkout(tmp_path) -> Path:
    """The repository's layout, linked into an empty folder (no results/, resources/ or logs/)."""
    for name in ("Snakefile", "workflow", "config", "slurm", "envs", "benchmarks", "Makefile", "pyproject.toml"):
        (tmp_path / name).symlink_to(REPO / name)
    return tmp_path


@pytest.mark.parametrize("where,command", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_doc_command_runs_as_written(where, command, fresh_checkout):
    argv = shlex.split(command)
    program = argv[0]
    if program in NOT_RUN:
        return
    bin_dir = Path(sys.executable).parent
    if program == "snakemake":
        files, i = [], argv.index("--configfile") + 1 if "--configfile" in argv else len(argv)
        while i < len(argv) and not argv[i].startswith("-"):
            files.append(fresh_checkout / argv[i])
            i += 1
        _fake_dataset_tree(files, fresh_checkout)
        if "--report" in argv:
            i = argv.index("--report")
            argv = argv[:i] + argv[i + 2:]
        cmd, cwd = [str(bin_dir / "snakemake"), *argv[1:], "-n"], fresh_checkout
    elif argv[:2] == ["python", "-c"]:
        compile(argv[2], where, "exec")
        return
    elif program == "make":
        cmd, cwd = ["make", "-n", *argv[1:]], REPO
    else:
        cmd, cwd = [sys.executable, *argv[1:], "--help"], REPO
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{where}: `{command}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    if program == "snakemake" and "--lint" not in argv:
        out = proc.stdout + proc.stderr
        assert "Job stats:" in out or "Nothing to be done" in out, f"{where}: {out[-2000:]}"
