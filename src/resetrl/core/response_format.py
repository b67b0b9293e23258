"""The response format every problem source and model shares: a chain of thoughts, each ended by the
delimiter, and the final answer in a LaTeX box. Resets cut at delimiters; rewards read the box."""

THOUGHT_END = "</thought>"
BOXED = "\\boxed{"
