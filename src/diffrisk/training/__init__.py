"""Stage 3, train: fit and evaluate in time order, choose the champion, register it."""
