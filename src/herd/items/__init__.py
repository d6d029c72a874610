"""Item batches: herd map and herd pipeline."""
