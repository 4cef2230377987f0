"""Models: transforms, estimators, contributions, metadata and the versioned registry."""
