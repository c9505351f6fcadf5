#!/bin/bash
# base.sh: what the broker needs from the distribution: Java for Kafka, xfsprogs for the
# filesystem kafka-bootstrap creates on a blank volume, curl and gnupg to fetch and verify Kafka.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# On the build instance's first boot cloud-init may still hold the package lock.
cloud-init status --wait >/dev/null || true
apt-get update
apt-get install -y --no-install-recommends ca-certificates curl gnupg openjdk-17-jre-headless xfsprogs
