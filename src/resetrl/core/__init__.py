"""What every layer uses: the validated params, atomic storage, the stage-entry error handling, the
tokenizer, the policy model (LoRA, model cards, checkpoints) and the metrics log."""
