"""The only place that runs git, and the worktrees built on it."""
