#!/bin/bash
# enable.sh: the image's own kafka-bootstrap settings and the units enabled for every boot.
# The stack's values arrive later from userdata, in config.d/50-stack.json.
set -euo pipefail

install -d -m 0755 /etc/kafka-bootstrap/config.d
cat > /etc/kafka-bootstrap/config.json <<'JSON'
{
  "kafka_user": "kafka",
  "properties_path": "/etc/kafka/server.properties",
  "mount_point": "/var/lib/kafka",
  "log_dir": "/var/lib/kafka/logs",
  "filesystem": "xfs"
}
JSON
kafka-bootstrap config >/dev/null

systemctl daemon-reload
systemd-analyze verify --man=no kafka-bootstrap.service kafka-bootstrap-signal.service kafka.service
systemctl enable kafka-bootstrap.service kafka.service kafka-bootstrap-signal.service
# Instances of the AMI run cloud-init, and so their userdata, as new machines.
cloud-init clean --logs
