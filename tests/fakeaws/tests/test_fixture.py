"""Fixture checks: a typo fails at load time, naming where it is."""

import pytest

from fakeaws import FakeAWS
from .conftest import load_fixture


@pytest.mark.parametrize("change,message", [
    (lambda f: f["instances"][0].update(subnet="subnet-00000000"), "$.instances[0].subnet: subnet 'subnet-00000000'"),
    (lambda f: f["instances"][0].update(id="i-123"), "$.instances[0].id: 'i-123' is not a i- id"),
    (lambda f: f["instances"][0].update(role="admin"), "$.instances[0].role: role 'admin' is not defined"),
    (lambda f: f["network_interfaces"][0].update(attachment={"instance": "i-0123456789abcdef0", "device_index": 1}),
     "$.network_interfaces[0].attachment.instance: instance 'i-0123456789abcdef0'"),
    (lambda f: f["subnets"][0].update(cidr="192.168.0.0/24"), "$.subnets[0]: 192.168.0.0/24 is not inside"),
    (lambda f: f.update(delays={"eni_attach": 1}), "$.delays: unknown keys ['eni_attach']"),
    (lambda f: f.update(colour="blue"), "$: unknown keys ['colour']"),
])
def test_bad_fixtures_name_the_offending_path(change, message):
    fixture = load_fixture()
    change(fixture)
    with pytest.raises(ValueError) as err:
        FakeAWS(fixture)
    assert message in str(err.value)


def test_cross_az_attachment_in_a_fixture_is_refused():
    fixture = load_fixture()
    fixture["network_interfaces"][1]["attachment"] = {"instance": "i-0000000000000a001", "device_index": 1}
    with pytest.raises(ValueError, match="different AZs"):
        FakeAWS(fixture)


def test_generated_ids_follow_the_seed():
    a = FakeAWS(load_fixture(), seed=5).launch_instance(az="us-east-1a")
    b = FakeAWS(load_fixture(), seed=5).launch_instance(az="us-east-1a")
    c = FakeAWS(load_fixture(), seed=6).launch_instance(az="us-east-1a")
    assert (a["id"], a["mac"], a["primary_eni"]) == (b["id"], b["mac"], b["primary_eni"]) != \
        (c["id"], c["mac"], c["primary_eni"])
