#!/usr/bin/env bash
# Differential tests of the EdgeOS memcached library: the same protocol sessions against Debian's
# memcached and against our memcached-host, plus a pymemcache client session.
# Installs what is missing (memcached, pytest, pymemcache), builds memcached-host, runs pytest.
set -euo pipefail

cd "$(dirname "$0")/../.."

if ! command -v memcached >/dev/null 2>&1; then
    echo "run.sh: installing Debian's memcached"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q memcached >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import pytest, pymemcache" >/dev/null 2>&1; then
    echo "run.sh: installing pytest and pymemcache"
    "$PYTHON" -m pip install -q pytest pymemcache
fi

cargo build -q --release -p edgeos-memcached --features host --bin memcached-host

exec "$PYTHON" -m pytest -q -p no:cacheprovider tests/memcached "$@"
