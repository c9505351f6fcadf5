"""The Chef cookbook: valid Ruby, clean under Debian's rubocop with the committed configuration
(which still catches real offenses), and a recipe that, evaluated by a recording stand-in for
Chef's DSL (chef_harness.rb), creates the kafka user with the image's ids, writes a
config.json the tool accepts, enables the units and never starts or restarts one."""
import json
import re
import shutil

import pytest
import yaml

from deploytools import KB_BINARY, SOURCE_DIR, packer_variable_default, run

CHEF = SOURCE_DIR / "chef"
COOKBOOK = CHEF / "cookbooks" / "kafka_bootstrap"
HARNESS = SOURCE_DIR / "tests" / "deploy" / "chef_harness.rb"
UNITS = ["kafka-bootstrap.service", "kafka-bootstrap-signal.service", "kafka.service"]


def ruby_files(root):
    return sorted(root.rglob("*.rb"))


def declared(overrides=None):
    args = ["ruby", HARNESS, COOKBOOK] + ([json.dumps(overrides)] if overrides else [])
    return json.loads(run(args).stdout)


def resources(result, type_name):
    return [r for r in result["resources"] if r["type"] == type_name]


def test_cookbook_has_metadata_attributes_recipe_and_readme():
    for part in ("metadata.rb", "attributes/default.rb", "recipes/default.rb", "README.md"):
        assert (COOKBOOK / part).is_file(), part


def test_every_ruby_file_is_valid_syntax(tmp_path):
    files = ruby_files(CHEF)
    assert len(files) == 3
    for path in files:
        assert run(["ruby", "-c", path]).stdout.strip() == "Syntax OK"
    broken = tmp_path / "default.rb"
    broken.write_text((COOKBOOK / "recipes" / "default.rb").read_text().replace("do\n", "{\n", 1))
    assert run(["ruby", "-c", broken], check=False).returncode != 0


def test_rubocop_passes_with_the_committed_configuration():
    proc = run(["rubocop", "--format", "simple", "--no-color", "."], check=False, cwd=CHEF)
    assert proc.returncode == 0, proc.stdout
    assert f"{len(ruby_files(CHEF))} files inspected, no offenses detected" in proc.stdout


def test_rubocop_configuration_still_catches_offenses(tmp_path):
    config = yaml.safe_load((CHEF / ".rubocop.yml").read_text())
    assert not config["AllCops"].get("DisabledByDefault")
    disabled = [cop for cop, c in config.items() if isinstance(c, dict) and c.get("Enabled") is False]
    assert disabled == ["Style/FrozenStringLiteralComment"]
    copy = tmp_path / "chef"
    shutil.copytree(CHEF, copy)
    recipe = copy / "cookbooks" / "kafka_bootstrap" / "recipes" / "default.rb"
    recipe.write_text(recipe.read_text() + 'unused = "no interpolation"\n')
    proc = run(["rubocop", "--format", "simple", "--no-color", "."], check=False, cwd=copy)
    assert proc.returncode == 1
    assert "Lint/UselessAssignment" in proc.stdout and "Style/StringLiterals" in proc.stdout


def test_metadata_names_the_cookbook_and_the_projects_version():
    metadata = (COOKBOOK / "metadata.rb").read_text()
    assert re.search(r"^name 'kafka_bootstrap'$", metadata, re.M)
    project = re.search(r"project\(kafka-bootstrap VERSION (\S+)", (SOURCE_DIR / "CMakeLists.txt").read_text())
    assert re.search(rf"^version '{re.escape(project.group(1))}'$", metadata, re.M)


def test_recipe_creates_the_kafka_user_with_the_images_ids():
    result = declared()
    group, = resources(result, "group")
    user, = resources(result, "user")
    uid = int(packer_variable_default("kafka_uid"))
    gid = int(packer_variable_default("kafka_gid"))
    assert (group["name"], group["properties"]["gid"]) == ("kafka", gid)
    assert (user["name"], user["properties"]["uid"], user["properties"]["gid"]) == ("kafka", uid, gid)
    assert user["properties"]["system"] is True
    order = [r["type"] for r in result["resources"]]
    assert order.index("user") < order.index("package") < order.index("file")


def test_recipe_writes_a_config_json_the_tool_accepts(tmp_path):
    config, = [r for r in resources(declared(), "file") if r["name"] == "/etc/kafka-bootstrap/config.json"]
    content = config["properties"]["content"]
    (tmp_path / "config.json").write_text(content)
    effective = json.loads(run([KB_BINARY, "config", "--config", tmp_path / "config.json"]).stdout)
    written = json.loads(content)
    assert {k: effective[k] for k in written} == written
    assert config["properties"]["mode"] == "0644"
    assert config["properties"]["verify"].startswith("/usr/bin/kafka-bootstrap config --config ")


def test_recipe_enables_the_units_and_never_starts_or_restarts_one():
    result = declared()
    units = resources(result, "systemd_unit")
    assert [u["name"] for u in units] == UNITS
    assert all(u["actions"] == ["enable"] for u in units)
    for r in result["resources"]:
        assert not {"start", "restart", "stop", "reload"} & set(r["actions"]), r
        assert not [n for n in r["notifies"] if n[0] in ("start", "restart", "stop", "reload")], r
    package, = resources(result, "package")
    assert package["notifies"] == [["run", "execute[systemctl daemon-reload]", "immediately"]]


@pytest.mark.parametrize("package_file", [None, "/var/cache/kafka-bootstrap_0.1.0_amd64.deb"])
def test_recipe_installs_from_repositories_or_a_package_file(package_file):
    result = declared({"kafka_bootstrap": {"package_file": package_file}})
    if package_file:
        pkg, = resources(result, "dpkg_package")
        assert pkg["properties"]["source"] == package_file and not resources(result, "package")
    else:
        pkg, = resources(result, "package")
        assert not resources(result, "dpkg_package")
    assert pkg["name"] == "kafka-bootstrap"
