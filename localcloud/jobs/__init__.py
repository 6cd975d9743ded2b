"""Training jobs: records, validation, the lifecycle driver and the hosts that run them."""
