#!/bin/bash
# kafka-bootstrap.sh: builds kafka-bootstrap's .deb from the uploaded sources on this base, so
# that its declared dependencies are this release's libraries, installs it with apt, and
# removes the build tools again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
src=/tmp/kafka-bootstrap-src
build_deps=(build-essential cmake pkg-config libblkid-dev libcurl4-openssl-dev libjansson-dev
	    libmnl-dev libssl-dev libxml2-dev libzookeeper-mt-dev)

apt-get install -y --no-install-recommends "${build_deps[@]}"
# Another compiler than the project's CI (Ubuntu's): its new warnings must not fail the image.
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKB_TESTS=OFF -DKB_WERROR=OFF
cmake --build "$src/build" -j "$(nproc)"
(cd "$src/build" && cpack -G DEB)
apt-get install -y "$src"/build/kafka-bootstrap_*.deb
apt-get purge -y --auto-remove "${build_deps[@]}"
rm -rf "$src"
kafka-bootstrap --version
