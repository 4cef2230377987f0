"""Stage 5, report: the PR comment, job summary, check summary and terminal output."""
