"""Change features: Kamei history replay, added lines of code, code metrics, cosmetic changes, vendored paths, fix keywords."""
