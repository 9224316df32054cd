# One command runs the product (`make run`), one runs the tests (`make test`).
# Both set up what they need — the bot's virtualenv, the Rasa runtime, the NLU model — and
# are quick when that is already done.
PY := .venv/bin/python

.PHONY: postgres chromium setup rasa model run chat test lint eval tune bench locales coverage check clean

setup:
	@bash scripts/setup-venv.sh

rasa:
	@bash scripts/setup-rasa.sh

postgres:
	@bash scripts/setup-postgres.sh

chromium:
	@bash scripts/setup-chromium.sh

model: setup rasa
	@$(PY) -m bot nlu train >/dev/null

run: setup rasa
	@$(PY) -m bot run

chat: setup rasa
	@$(PY) -m bot chat

lint: setup
	$(PY) -m ruff check bot nlu tests
	$(PY) -m ruff format --check bot nlu tests
	$(PY) -m mypy
	$(PY) -m bot locales check

test: setup rasa postgres chromium lint
	$(PY) -m pytest

eval: model
	$(PY) -m bot eval --compare --json var/eval.json --min-accuracy 0.88

tune: model
	$(PY) -m bot tune

bench: model
	$(PY) -m bot bench --load --write docs/benchmarks.md

check: setup
	$(PY) -m bot content check

coverage: setup
	$(PY) -m bot content coverage

locales: setup
	$(PY) -m bot locales update

clean:
	rm -rf .venv .rasa-venv nlu/models nlu/data nlu/domain.yml var
