#!/bin/sh
# Maintainer script of the kafka-bootstrap package, installed as the .deb's postinst and
# postrm and the .rpm's %post and %postun: make systemd reread the units and the kafka.service
# drop-in that came or went. It never enables, starts, stops or restarts a unit: a restart of
# kafka-bootstrap.service restarts kafka.service (Requires=) and bounces the broker; images and
# cookbooks enable the units themselves.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
