"""Names and constants the SageMaker containers agree on (toolkit params.py)."""

from __future__ import annotations

import re

OPT_ML = "/opt/ml"
GROUP_NAME = "homogeneousCluster"
# The toolkit never passes these reserved keys to the script; every other sagemaker_* key is a
# "framework parameter" (contract §2.3).
RESERVED_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "default_user_module_name",
    "_tuning_objective_metric",
    "sagemaker_s3_output",
)
# Hyperparameters that turn on a distribution strategy and so make the toolkit pick its master
# from the instance group's host list.
DISTRIBUTION_FLAGS = (
    "sagemaker_mpi_enabled",
    "sagemaker_parameter_server_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled",
    "sagemaker_torch_distributed_enabled",
)
TORCH_DISTRIBUTED_ENABLED = "sagemaker_torch_distributed_enabled"
# SAGEMAKER_TRAINING_MODULE of each framework image; it shows up as SM_FRAMEWORK_MODULE.
FRAMEWORK_MODULES = {
    "pytorch": "sagemaker_pytorch_container.training:main",
    "xgboost": "sagemaker_xgboost_container.training:main",
    "sklearn": "sagemaker_sklearn_container.training:main",
    "tensorflow": "sagemaker_tensorflow_container.training:main",
}
# The API's ChannelName pattern; "." and ".." match it but name no folder of their own.
CHANNEL_NAME = re.compile(r"[A-Za-z0-9\.\-_]+")
