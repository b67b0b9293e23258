"""The study's numbers from the graph's outputs: statistics, claims with intervals, figures, the
results page, and the theory checks (CPI, tabular chain)."""
