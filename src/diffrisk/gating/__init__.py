"""Stage 5, gate: merge and deployment decisions."""
