"""Stage 2, label: bug-fixing commits and, by SZZ, the commits that induced the bugs."""
