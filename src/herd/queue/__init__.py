"""The task queue: bd's issues, dependencies and rules over the store."""
