"""The shared engine: executors, the journal, attempt policies, typed events, shutdown."""
