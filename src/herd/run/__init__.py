"""A run: plan -> hypervisor (workers) -> landing."""
