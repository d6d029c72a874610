"""`herd mcp`: serve the queue, plan, runs and reports to an agent over stdio (MCP)."""

from __future__ import annotations

from herd.cli.app import cli, common, make_context
from herd.errors import BadInput


@cli.command("mcp")
@common
def mcp_cmd(db: str | None, as_json: bool) -> None:
    """Model Context Protocol server over stdio for agents (needs the `mcp` extra)."""
    from herd.store import find_db

    ctx = make_context(db, as_json)
    path = find_db(ctx.db)  # no store: exit 3 before the client sees a half-started server
    try:
        from herd.door import mcp_server
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("mcp"):
            raise
        from herd.install import extra_hint

        raise BadInput(
            "herd mcp needs the MCP SDK: install herd's `mcp` extra "
            f"({extra_hint('mcp')}, or pip install 'mcp>=2')"
        ) from None
    mcp_server.serve(path)
