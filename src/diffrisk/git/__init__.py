"""git plumbing: processes, record parsing, revisions. Everything that starts git lives here."""
