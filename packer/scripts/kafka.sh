#!/bin/bash
# kafka.sh: the kafka user and group with fixed ids (a volume's files keep their owner from one
# instance to the next), Apache Kafka from the release tarball once its signature and SHA-512
# check out, /etc/kafka/server.properties (kafka-bootstrap writes its managed keys) and the
# image's kafka.service.
set -euo pipefail
: "${KAFKA_VERSION:?}" "${SCALA_VERSION:?}" "${KAFKA_MIRROR:?}" "${KAFKA_UID:?}" "${KAFKA_GID:?}"

groupadd --system --gid "$KAFKA_GID" kafka
useradd --system --uid "$KAFKA_UID" --gid kafka --home-dir /var/lib/kafka --no-create-home \
	--shell /usr/sbin/nologin kafka

name="kafka_${SCALA_VERSION}-${KAFKA_VERSION}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in "$name.tgz" "$name.tgz.asc" "$name.tgz.sha512"; do
	curl -fsSL --retry 5 -o "$work/$f" "$KAFKA_MIRROR/$KAFKA_VERSION/$f"
done
curl -fsSL --retry 5 -o "$work/KEYS" "$KAFKA_MIRROR/KEYS"

# Signed by a Kafka release manager listed in the project's KEYS, and the published checksum.
export GNUPGHOME="$work/gnupg"
install -d -m 0700 "$GNUPGHOME"
gpg --batch --quiet --import "$work/KEYS"
gpg --batch --verify "$work/$name.tgz.asc" "$work/$name.tgz"
bash /tmp/verify-sha512.sh "$work/$name.tgz" "$work/$name.tgz.sha512" "${KAFKA_SHA512:-}"

tar -xzf "$work/$name.tgz" -C /opt --no-same-owner
ln -sfn "/opt/$name" /opt/kafka
install -d -o root -g kafka -m 0750 /etc/kafka
install -o root -g kafka -m 0640 "/opt/$name/config/server.properties" /etc/kafka/server.properties
# The broker's volume is mounted here by kafka-bootstrap.
install -d -o kafka -g kafka -m 0750 /var/lib/kafka
install -m 0644 /tmp/kafka.service /etc/systemd/system/kafka.service
