"""Stage 1, mine: a repository's history into DATA_DIR/changes.parquet and files.parquet."""
