#!/usr/bin/env bash
# What building Eddy needs beyond Rust: librdkafka (the Kafka client) is compiled from source
# by the rdkafka crate with CMake, against OpenSSL (TLS, SASL SCRAM) and curl's headers.
# Installs Debian's packages for them when they are missing; quick when they are there.
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
[ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -e /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    echo "Installing build dependencies: ${missing[*]}"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
