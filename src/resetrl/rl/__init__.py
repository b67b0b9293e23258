"""The methods: arms (GRPO, RRPO, SRPO, oracle), the reset buffer, self-localization, losses, the
training loop, the SFT warm start, and evaluation of a policy."""
