"""No typer type labels (``<str>``, ``<bool>``, ``<path>``, ...) in any command's help (issue 18, D27).

Every command and subcommand of the three CLIs is asked for ``--help`` as a user would, in a
subprocess; arguments show their name (``COMPUTER``), flags nothing, options their metavar.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

LABEL = re.compile(r"<(str|bool|int|float|path|file|text|integer|choice|list\[[a-z]+\])>")
COMMANDS = ("smcp.agent.cli", "smcp.computer.cli")


def help_of(module: str, *args: str) -> str:
    done = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
        [
            sys.executable,
            "-c",
            f"import sys; from {module} import main; sys.argv[0] = 'x'; main()",
            *args,
            "--help",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def subcommands(text: str) -> list[str]:
    """The command names listed under 'Commands' (typer's plain or rich layout)."""
    section = text.split("Commands", 1)[1] if "Commands" in text else ""
    return re.findall(r"^[\s│]*([a-z][a-z-]+)\s{2,}", section, re.M)


@pytest.mark.parametrize("module", COMMANDS)
def test_no_type_labels_in_any_help(module: str) -> None:
    top = help_of(module)
    names = subcommands(top)
    assert len(names) >= 2, top
    for text, where in [(top, "--help"), *((help_of(module, name), f"{name} --help") for name in names)]:
        found = LABEL.findall(text)
        assert not found, f"{module} {where} shows type labels {found}:\n{text}"
        assert "Usage:" in text


def test_the_arguments_show_their_names() -> None:
    text = help_of("smcp.agent.cli", "call")
    assert re.search(r"^\s*COMPUTER\s", text, re.M) and re.search(r"^\s*TOOL\s", text, re.M), text
    text = help_of("smcp.computer.cli", "validate")
    assert "CONFIG" in text, text


def test_the_server_help_has_no_type_labels() -> None:
    done = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
        [sys.executable, "-m", "smcp.server.asgi.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert not LABEL.findall(done.stdout)
