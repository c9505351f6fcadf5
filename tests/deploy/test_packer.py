"""The Packer template, for current Packer (1.10+; Debian's 1.6.6 cannot read it): syntax and
canonical format by hclfmt, built from Debian's HCL sources; invariants on its parse by
hcl2json/ here (same sources); its shell scripts; and the checksum check Kafka's tarball must
pass, run for real."""
import hashlib
import re

import pytest

from deploytools import (KB_BINARY, PACKER_TEMPLATE, SOURCE_DIR, blocks, config_keys, go_tool,
                         hcl_json, packer_variable_default, run)

PACKER = SOURCE_DIR / "packer"
SCRIPTS = PACKER / "scripts"


def attr(body, name):
    return body["attributes"][name]


def source_body():
    source, = blocks(hcl_json(), "source", "amazon-ebs", "broker")
    return source["body"]


def build_body():
    build, = blocks(hcl_json(), "build")
    return build["body"]


def test_template_is_valid_canonically_formatted_hcl():
    hclfmt = go_tool("hclfmt", "github.com/hashicorp/hcl/v2/cmd/hclfmt")
    templates = sorted(PACKER.glob("*.pkr.hcl"))
    assert templates == [PACKER_TEMPLATE]
    run([hclfmt, "-check", "-require-no-change", *templates])


def test_hclfmt_rejects_a_broken_template(tmp_path):
    hclfmt = go_tool("hclfmt", "github.com/hashicorp/hcl/v2/cmd/hclfmt")
    broken = tmp_path / "broken.pkr.hcl"
    broken.write_text(PACKER_TEMPLATE.read_text().replace("  metadata_options {", "  metadata_options {{", 1))
    proc = run([hclfmt, "-check", broken], check=False)
    assert proc.returncode == 1
    assert re.search(r"broken\.pkr\.hcl line \d+", proc.stderr)
    unformatted = tmp_path / "unformatted.pkr.hcl"
    unformatted.write_text(PACKER_TEMPLATE.read_text().replace('  region          = var.region',
                                                               '  region = var.region', 1))
    assert run([hclfmt, "-require-no-change", unformatted], check=False).returncode != 0


def test_template_needs_current_packer_and_the_amazon_plugin():
    packer, = blocks(hcl_json(), "packer")
    version = attr(packer["body"], "required_version")["value"]
    assert re.fullmatch(r">= 1\.(1\d|[2-9]\d)\.\d+", version), version
    plugins, = blocks(packer["body"], "required_plugins")
    assert attr(plugins["body"], "amazon")["value"]["source"] == "github.com/hashicorp/amazon"


def test_build_and_image_require_imdsv2():
    body = source_body()
    assert attr(body, "imds_support")["value"] == "v2.0"
    options, = blocks(body, "metadata_options")
    assert attr(options["body"], "http_tokens")["value"] == "required"
    assert attr(options["body"], "http_put_response_hop_limit")["value"] in (1, 2)
    assert attr(options["body"], "instance_metadata_tags")["value"] == "enabled"


def test_base_is_the_newest_ubuntu_matching_a_variable_filter():
    body = source_body()
    ami_filter, = blocks(body, "source_ami_filter")
    assert attr(ami_filter["body"], "most_recent")["value"] is True
    assert attr(ami_filter["body"], "owners")["expr"] == "var.base_ami_owners"
    assert "name                = var.base_ami_name" in attr(ami_filter["body"], "filters")["expr"]
    assert re.match(r"ubuntu/images/.*ubuntu-noble-24\.04-amd64-server-\*$", packer_variable_default("base_ami_name"))
    # Ubuntu, so the package built and installed is the .deb.
    assert "cpack -G DEB" in (SCRIPTS / "kafka-bootstrap.sh").read_text()
    assert packer_variable_default("region")


def test_kafka_defaults_to_the_latest_3_9_and_refuses_4():
    assert re.fullmatch(r"3\.9\.\d+", packer_variable_default("kafka_version"))
    variable, = blocks(hcl_json(), "variable", "kafka_version")
    validation, = blocks(variable["body"], "validation")
    condition = attr(validation["body"], "condition")["expr"]
    pattern = re.search(r'regex\("(.*)", var\.kafka_version\)', condition).group(1).replace("\\\\", "\\")
    assert re.search(pattern, "3.9.2") and re.search(pattern, "3.9.10")
    assert not re.search(pattern, "4.0.0") and not re.search(pattern, "3.8.1")


def test_build_uploads_what_exists_and_runs_every_script():
    body = build_body()
    uploaded = [s for p in blocks(body, "provisioner", "file")
                for s in re.findall(r'"\$\{(?:local\.repo|path\.root)\}/([^"]+)"', p["body"]["attributes"].get(
                    "sources", p["body"]["attributes"].get("source"))["expr"])]
    for path in uploaded:
        assert ((SOURCE_DIR if not path.startswith(("files/", "scripts/")) else PACKER) / path).exists(), path
    shells = blocks(body, "provisioner", "shell")
    scripts = [s for p in shells if "scripts" in p["body"]["attributes"]
               for s in re.findall(r'scripts/([\w.-]+\.sh)', attr(p["body"], "scripts")["expr"])]
    assert scripts == ["base.sh", "kafka.sh", "kafka-bootstrap.sh", "enable.sh"]
    assert sorted(scripts + ["verify-sha512.sh"]) == sorted(p.name for p in SCRIPTS.glob("*.sh"))
    for script in SCRIPTS.glob("*.sh"):
        run(["bash", "-n", script])
        assert "set -euo pipefail" in script.read_text(), script


def test_image_enables_the_units_and_verifies_them():
    enable = (SCRIPTS / "enable.sh").read_text()
    enabled, = re.findall(r"^systemctl enable (.+)$", enable, re.M)
    assert sorted(enabled.split()) == ["kafka-bootstrap-signal.service", "kafka-bootstrap.service", "kafka.service"]
    assert re.search(r"^systemd-analyze verify .*kafka\.service$", enable, re.M)
    assert "cloud-init clean" in enable


def test_image_config_json_is_accepted_by_the_tool(tmp_path):
    enable = (SCRIPTS / "enable.sh").read_text()
    config = re.search(r"<<'JSON'\n(.*?)\nJSON\n", enable, re.S).group(1)
    (tmp_path / "config.json").write_text(config)
    run([KB_BINARY, "config", "--config", tmp_path / "config.json"])


def test_kafka_unit_runs_the_installed_kafka_with_the_tools_properties():
    unit = (PACKER / "files" / "kafka.service").read_text()
    kafka = (SCRIPTS / "kafka.sh").read_text()
    exec_start, = re.findall(r"^ExecStart=(\S+) (\S+)$", unit, re.M)
    assert exec_start[0] == "/opt/kafka/bin/kafka-server-start.sh"
    assert 'ln -sfn "/opt/$name" /opt/kafka' in kafka
    assert exec_start[1] == config_keys()["properties_path"]
    assert re.search(r"^User=kafka$", unit, re.M)
    assert 'useradd --system --uid "$KAFKA_UID" --gid kafka' in kafka
    assert "gpg --batch --verify" in kafka and "verify-sha512.sh" in kafka


# --- the tarball's checksum check, run ----------------------------------------------------------

def gpg_print_md(name, digest):
    """Apache's .sha512 layout: `gpg --print-md SHA512` output."""
    groups = [digest.upper()[i:i + 8] for i in range(0, 128, 8)]
    return f"{name}: {' '.join(groups[:8])}\n{' ' * (len(name) + 2)}{' '.join(groups[8:])}\n"


@pytest.fixture
def tarball(tmp_path):
    path = tmp_path / "kafka_2.13-3.9.2.tgz"
    path.write_bytes(b"not really kafka \x00\xff" * 100)
    return path, hashlib.sha512(path.read_bytes()).hexdigest()


def verify_sha512(*args):
    return run(["bash", SCRIPTS / "verify-sha512.sh", *args], check=False)


@pytest.mark.parametrize("layout", ["gpg", "sha512sum"])
def test_checksum_check_accepts_the_published_sum(tarball, tmp_path, layout):
    path, digest = tarball
    sums = tmp_path / "sums"
    sums.write_text(gpg_print_md(path.name, digest) if layout == "gpg" else f"{digest}  {path.name}\n")
    assert verify_sha512(path, sums).returncode == 0
    assert verify_sha512(path, sums, digest.upper()).returncode == 0


def test_checksum_check_refuses_a_changed_tarball_or_a_wrong_pin(tarball, tmp_path):
    path, digest = tarball
    sums = tmp_path / "sums"
    flipped = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    sums.write_text(gpg_print_md(path.name, flipped))
    proc = verify_sha512(path, sums)
    assert proc.returncode == 1 and digest in proc.stderr
    sums.write_text(gpg_print_md(path.name, digest))
    assert verify_sha512(path, sums, flipped).returncode == 1
    sums.write_text(f"{path.name}: \n")
    assert verify_sha512(path, sums).returncode == 1

