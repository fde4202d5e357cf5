"""Token usage and cost: what each reply used (``metadata.usage``), what it cost, and the sums
per conversation and per user (the Usage page, ``views.bp``). The blueprint is not imported
here: the run executor imports :mod:`.services`, and the views import the conversations package,
which imports the executor."""
