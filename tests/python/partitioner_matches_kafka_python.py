#!/usr/bin/env python3
"""Keys land where Kafka's own partitioner puts them.

Produces keyed records with `eddy topic produce` and checks every record's partition against
kafka-python's port of the Java client's murmur2 partitioner: an oracle independent of
Eddy's code. Usage: partitioner_matches_kafka_python.py PATH/TO/eddy
"""
import random
import subprocess
import sys
import tempfile

from kafka.partitioner.default import murmur2


def kafka_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def main() -> int:
    eddy = sys.argv[1]
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as data_dir:
        def run(*args, stdin=None):
            return subprocess.run([eddy, "--data-dir", data_dir, *args], input=stdin,
                                  capture_output=True, check=True).stdout
        failures = 0
        for partitions in (1, 3, 7, 16):
            topic = f"keys-{partitions}"
            run("topic", "create", topic, "--partitions", str(partitions))
            keys = set()
            while len(keys) < 2000:
                length = rng.randint(0, 40)
                alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.éü"
                keys.add("".join(rng.choice(alphabet) for _ in range(length)))
            keys = sorted(keys)
            lines = "".join(f"{k}\t{i}\n" for i, k in enumerate(keys)).encode()
            run("topic", "produce", topic, "--key-separator", "\t", stdin=lines)
            out = run("topic", "consume", topic, "--from-beginning", "--format", "%p\\t%k\\n")
            seen = 0
            for line in out.decode().splitlines():
                partition, key = line.split("\t", 1)
                expected = kafka_partition(key.encode(), partitions)
                if int(partition) != expected:
                    failures += 1
                    print(f"FAIL key {key!r}: eddy partition {partition}, kafka {expected}")
                seen += 1
            assert seen == len(keys), f"{seen} of {len(keys)} records came back"
            print(f"ok   {len(keys)} keys over {partitions} partitions match kafka-python's partitioner")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
