"""Maintainers' tools (evaluation, benchmarks, editors' and translators' tools): not run by the bot."""
