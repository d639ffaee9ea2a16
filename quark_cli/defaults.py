"""Defaults of the engine's concurrency, in a module light enough for ``quark --help`` to import."""

#: Jobs ``collect`` polls at once when their manager has no batch status call: the threads mostly
#: wait on the network, and 1,000 jobs at 50 ms a call take under a second.
POLL_WORKERS = 128

#: Stacks ``quark submit`` walks at once (``quark_cli.submitting``); each waits for at most one
#: submission at a time, so 1,000 submissions of 50 ms take about a second, not 50.
SUBMIT_WORKERS = 64
