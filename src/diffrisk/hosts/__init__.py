"""Code hosts diffrisk publishes to."""
