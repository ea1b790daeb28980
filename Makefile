# `sam build` runs `make build-<LogicalId>` with ARTIFACTS_DIR set (Metadata: BuildMethod: makefile).
# Dependencies are installed as arm64 wheels for the Lambda runtime, whatever machine builds them, so
# `sam build` needs neither Docker nor `--use-container`. LAMBDA_PYTHON is the template's Runtime
# (tests/deploy checks that they agree). A deployed stack is arm64. For `sam local` on an x86_64 machine,
# build x86_64 wheels and say so to the template (`./dev sam-local` does; docs/sam-local.md):
#   LAMBDA_PLATFORM=manylinux2014_x86_64 sam build --parameter-overrides Architecture=x86_64
LAMBDA_PYTHON ?= 3.13
LAMBDA_PLATFORM ?= manylinux2014_aarch64
PYTHON ?= python3

define package
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile --target "$(ARTIFACTS_DIR)" \
		--platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: -r requirements-lambda.txt
	cp -R core infra handlers "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -type d -prune -exec rm -rf {} +
endef

build-ApiFunction:
	$(package)

.PHONY: build-ApiFunction

build-StreamFunction:
	$(package)
	cp run.sh "$(ARTIFACTS_DIR)/"
	chmod +x "$(ARTIFACTS_DIR)/run.sh"

.PHONY: build-StreamFunction

build-WorkerFunction:
	$(package)

.PHONY: build-WorkerFunction

build-ChangeEventsFunction:
	$(package)

.PHONY: build-ChangeEventsFunction
