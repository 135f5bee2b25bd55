#!/usr/bin/env bash
# Installs the toolchains of the benchmark peers written in other languages
# (Go; Erlang) and the HTTP load generator wrk, from the distribution's
# packages. Idempotent: what is already
# there is left alone. The test suite never needs these; `braid bench` skips a
# peer whose toolchain is missing, with a one-line note.
set -euo pipefail

need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
command -v erl >/dev/null 2>&1 || need+=(erlang-nox)
command -v wrk >/dev/null 2>&1 || need+=(wrk)

if [ ${#need[@]} -eq 0 ]; then
    echo "peers: go, erl and wrk already installed"
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "peers: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
command -v go && go version
command -v wrk && wrk --version | head -1 || true
command -v erl && erl -noshell -eval 'io:format("erlang ~s~n", [erlang:system_info(otp_release)]), halt().'
