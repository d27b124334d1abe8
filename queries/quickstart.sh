#!/usr/bin/env bash
# Eddy's quickstart on the embedded log (no broker, no JVM): create a keyed topic, produce
# page views into it with the topic tools, read them back with their partitions and offsets,
# then declare a stream over the topic in SQL, insert more, and run a push query over all of it;
# last, the SQL quickstart: a persistent query (CSAS) and a push query over its output.
#
#   ./queries/quickstart.sh                # data in ./eddy-data (or $EDDY_DATA_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eddy/target}"
export EDDY_DATA_DIR="${EDDY_DATA_DIR:-./eddy-data}"

./scripts/build-deps.sh
cargo build --release --quiet
eddy="$CARGO_TARGET_DIR/release/eddy"

"$eddy" topic delete pageviews 2>/dev/null || true
"$eddy" topic create pageviews --partitions 3 --config retention.ms=86400000

# user:page lines; the user is the key, so one user's views stay in order on one partition.
users=(alice bob carol dave erin frank)
for i in $(seq 0 11); do
    user=${users[$(( (i * 7) % 6 ))]}
    echo "$user:{\"page\":\"/p/$i\",\"duration_ms\":$(( i * 250 ))}"
done | "$eddy" topic produce pageviews --key-separator :

echo "--- pageviews, by partition (key → Kafka's murmur2 partition):"
"$eddy" topic consume pageviews --from-beginning --format 'partition %p offset %o  %k  %s\n'
echo "--- describe:"
"$eddy" topic describe pageviews

echo "--- SQL over the same topic (queries/pageviews.sql):"
"$eddy" run queries/pageviews.sql --until-idle

echo "--- a pipeline: a persistent query and a push query over its output (queries/quickstart.sql):"
"$eddy" run queries/quickstart.sql --until-idle
