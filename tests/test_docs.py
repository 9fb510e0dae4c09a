"""The README's quick start runs as written (at a tiny size), and docs/flags.md is every parser's flags."""
import os
import re
import shlex
import subprocess
import sys

from conftest import ROOT, TINY

from dcgan_mnist.tools import reference


def readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def quick_start():
    """The commands of the README's quick start, in order."""
    section = readme().split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def test_the_readme_opens_with_the_pictures_and_the_quick_start():
    text = readme()
    head = text.splitlines()[:40]
    assert any(line.startswith("![") and "docs/readme-grids.png" in line for line in head)
    assert any(line.startswith("## Quick start") for line in head)
    assert len(text.splitlines()) <= 200
    for picture in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert os.path.isfile(os.path.join(ROOT, picture)), picture
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert os.path.isfile(os.path.join(ROOT, link)), link


def test_the_quick_start_runs_as_written(mnist_dir, tmp_path):
    commands = quick_start()
    assert commands[0] == ["bash", "scripts/setup.sh"] and len(commands) <= 3
    for words in commands[1:]:
        assert words[0] == ".venv/bin/python"
        words = [sys.executable] + [os.path.join(ROOT, w) if w == "train.py" else w for w in words[1:]]
        if words[1].endswith("train.py"):  # the same run, tiny: later flags win
            words += [*TINY, "--data-dir", mnist_dir, "--max-iterations", "4"]
        result = subprocess.run(words, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "digits.png").is_file() and (tmp_path / "runs" / "quick" / "settings.json").is_file()


def test_flags_reference_is_every_parsers_flags():
    with open(os.path.join(ROOT, "docs", "flags.md")) as f:
        on_disk = f.read()
    assert on_disk == reference.markdown(), (
        "docs/flags.md is out of date: python -m dcgan_mnist.tools.reference > docs/flags.md")
    for flag in ("--log-every", "--judge-dir", "--keep-checkpoints", "--jobs", "--precision", "--scale"):
        assert f"`{flag}`" in on_disk
