"""The floor plan holds: the flow imports one way, no package has import circles, rooms stay small,
and the types are checked (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "outreach"
#: A module a newcomer reads in one sitting.
MAX_LINES = 400


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Python with these arguments, in its own process: a checker that reconfigures logging (as
    import-linter does) leaves this test session's loggers alone."""
    return subprocess.run([sys.executable, *arguments], cwd=PACKAGE.parent, capture_output=True, text=True)


def test_imports_follow_the_layers_of_the_flow_and_make_no_circles():
    done = run(
        "-c",
        "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_module_is_over_the_size_a_newcomer_reads_in_one_sitting():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


@pytest.mark.slow
def test_the_types_check():
    done = run("-m", "mypy", "--no-error-summary")
    assert done.returncode == 0, done.stdout + done.stderr
