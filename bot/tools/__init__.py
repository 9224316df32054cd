"""Maintainers' tools, run from the command line (``python -m bot …``), never by the running bot.

- ``content``: the editors' tools (``content check|coverage|preview|review|migrate-review|unanswered``);
- ``locales``: the translators' gettext workflow (``locales update|check``);
- ``evaluation``, ``realistic``, ``compare``: accuracy on held-out and realistic questions (``eval``);
- ``benchmark``: latency and memory of the engine and the NLU server (``bench``).
"""
