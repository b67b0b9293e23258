"""Sampling chains of thoughts: the engine interface (`engine`), the torch and vLLM engines, and the
factory that picks one from `rollout.engine`."""
