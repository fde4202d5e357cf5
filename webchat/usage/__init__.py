"""Token usage and cost: what each reply used (``metadata.usage``), what it cost, and the sums
per conversation and per user."""
