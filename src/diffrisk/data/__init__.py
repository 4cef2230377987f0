"""The data directory: its schema, its tables written atomically, the prediction log, the lock."""
