.PHONY: setup demo test lint ui bench clean

setup:          ## install everything into .venv from uv.lock
	bash scripts/setup.sh

demo:           ## set up and run the breast-cancer pipeline on the embedded default
	bash scripts/demo.sh

test:           ## set up and run linters and the whole test suite
	bash scripts/test.sh

lint:
	.venv/bin/ruff check src tests && .venv/bin/lint-imports

ui:             ## the MLflow UI on the embedded store (http://127.0.0.1:5000)
	.venv/bin/conveyor ui

bench:          ## side-by-side benchmarks (see benchmarks/README.md)
	.venv/bin/python benchmarks/run_breast_cancer.py

clean:          ## remove the embedded store, MLflow database and exports
	rm -rf .conveyor
