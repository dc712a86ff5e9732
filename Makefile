# Thin wrappers around scripts/*.sh; see those files for details.
.PHONY: setup test demo bench lint services services-stop lock

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench: setup
	.venv/bin/python benchmarks/bench_core.py

lint: setup
	.venv/bin/ruff check arbkit tests

services:
	bash scripts/services.sh

services-stop:
	bash scripts/services.sh stop

# Pin the venv's versions as the ones CI proves (run after a deliberate upgrade, then test).
lock: setup
	.venv/bin/pip freeze --exclude-editable | grep -v '^arbkit' > constraints.txt
