"""GitHub: the REST client, the Actions runner's files and workflow commands, publishing."""
