"""Stage 4, score: a pull request or a release diff, with its reasons."""
