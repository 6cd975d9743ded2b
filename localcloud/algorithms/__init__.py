"""Built-in SageMaker algorithms that localcloud runs as host processes (contract §4)."""
