"""The agents' door: the MCP server, background runs, agent instruction files."""
