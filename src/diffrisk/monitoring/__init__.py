"""Stage 6, monitor: drift, realized accuracy, retraining."""
