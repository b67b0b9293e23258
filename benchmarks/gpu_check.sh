#!/usr/bin/env bash
# The GPU check for a session lent a GPU machine (< 5 minutes): needs a Python with the project's
# requirements (and vLLM to include the vllm engine). Writes results/benchmarks/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")"
PYTHONPATH=../src timeout 300 python gpu_check.py
