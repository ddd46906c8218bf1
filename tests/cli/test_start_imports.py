"""Every command starts by reading config.toml; the MCP SDK (over a second to import on these
machines) is imported only by what talks to MCP servers, so `chatplex send`, `list` and the
TUI start without it."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import env_with_src


def test_reading_the_config_and_starting_a_command_does_not_import_the_mcp_sdk():
    probe = (
        "import sys, chatplex.cli, chatplex.cli.admin, chatplex.cli.tools, chatplex.config,"
        " chatplex.core.coordinator, chatplex.tui.app;"
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env_with_src(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
