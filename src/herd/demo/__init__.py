"""The built-in example: a small repository and a worker that really edits and commits."""
