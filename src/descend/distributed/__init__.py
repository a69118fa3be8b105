"""Beyond one process: torch.distributed process groups, sharded data and all-reduced objectives."""
