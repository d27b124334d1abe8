#!/usr/bin/env bash
# Eddy's quickstart on the embedded log (no broker, no JVM): create a keyed topic, produce
# page views into it, and read them back with their partitions and offsets.
#
#   ./queries/quickstart.sh                # data in ./eddy-data (or $EDDY_DATA_DIR)
#
# Until the SQL front end lands (issue 3) this is the pipeline the log tools run; it then
# becomes `eddy run queries/quickstart.sql --until-idle`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eddy/target}"
export EDDY_DATA_DIR="${EDDY_DATA_DIR:-./eddy-data}"

cargo build --release --quiet
eddy="$CARGO_TARGET_DIR/release/eddy"

"$eddy" topic delete pageviews 2>/dev/null || true
"$eddy" topic create pageviews --partitions 3 --config retention.ms=86400000

# user:page lines; the user is the key, so one user's views stay in order on one partition.
users=(alice bob carol dave erin frank)
for i in $(seq 0 11); do
    user=${users[$(( (i * 7) % 6 ))]}
    echo "$user:{\"page\":\"/p/$i\",\"user\":\"$user\"}"
done | "$eddy" topic produce pageviews --key-separator :

echo "--- pageviews, by partition (key → Kafka's murmur2 partition):"
"$eddy" topic consume pageviews --from-beginning --format 'partition %p offset %o  %k  %s\n'
echo "--- describe:"
"$eddy" topic describe pageviews
