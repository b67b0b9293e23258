"""resetrl: credit assignment with resets (GRPO / RRPO / SRPO) for language-model reasoning RL."""

__version__ = "0.1.0"
