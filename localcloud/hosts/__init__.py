"""Hosts of a training job as local processes, split like the sagemaker-training toolkit."""
