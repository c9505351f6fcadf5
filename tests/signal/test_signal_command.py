"""`kafka-bootstrap signal --success|--failure` against the fake AWS: which calls a node's
verdict turns into (SignalResource, SetInstanceHealth, CompleteLifecycleAction), where the stack
and group names come from (config, IMDS instance tags, DescribeTags), and that a stack that
does not wait for signals is not a failure while a refused signal is (exit 14)."""
import pytest

from signal_common import GROUP, HOOK, INSTANCE, STACK_ARN, kb_signal, start_fake



@pytest.fixture
def fake():
    f = start_fake()
    yield f
    f.stop()
    assert f.errors() == []


def kb(fake, tmp_path, *args, config=None):
    return kb_signal(fake, tmp_path, *args, config=config)


def actions(fake):
    return [r["action"] for r in fake.requests() if r["service"] != "imds"]


def tag_reads(fake):
    """The instance tags asked of IMDS, in order."""
    return [r["path"].rsplit("/", 1)[1] for r in fake.requests()
            if r["service"] == "imds" and "/tags/instance/" in r["path"]]


def test_failure_signals_the_stack_and_marks_the_instance_unhealthy(fake, tmp_path):
    r = kb(fake, tmp_path, "--failure")
    assert r.returncode == 0, r.stderr
    assert [(s["stack"], s["logical_id"], s["unique_id"], s["status"])
            for s in fake.signals()] == [(STACK_ARN, "BrokerGroup", INSTANCE, "FAILURE")]
    calls = fake.autoscaling_calls()
    assert [(c["action"], c["params"]["InstanceId"], c["params"]["HealthStatus"])
            for c in calls] == [("SetInstanceHealth", INSTANCE, "Unhealthy")]
    # The names came from IMDS instance tags: no IAM permission needed for DescribeTags.
    assert "DescribeTags" not in actions(fake)
    assert tag_reads(fake) == ["aws:cloudformation:stack-id", "aws:cloudformation:logical-id",
                               "aws:autoscaling:groupName"]


def test_success_signals_success_and_nothing_else(fake, tmp_path):
    r = kb(fake, tmp_path, "--success")
    assert r.returncode == 0, r.stderr
    assert [s["status"] for s in fake.signals()] == ["SUCCESS"]
    assert fake.autoscaling_calls() == []


@pytest.mark.parametrize("verdict, result", [("--failure", "ABANDON"), ("--success", "CONTINUE")])
def test_lifecycle_hook_is_abandoned_on_failure_and_continued_on_success(fake, tmp_path, verdict,
                                                                         result):
    config = {"on_failure": ["lifecycle"], "lifecycle_hook": HOOK}
    r = kb(fake, tmp_path, verdict, config=config)
    assert r.returncode == 0, r.stderr
    assert [(c["action"], c["params"]["LifecycleActionResult"], c["params"]["LifecycleHookName"],
             c["params"]["AutoScalingGroupName"]) for c in fake.autoscaling_calls()] == [
        ("CompleteLifecycleAction", result, HOOK, GROUP)]
    # FAILURE goes to the stack only when on_failure says "signal"; SUCCESS always does.
    assert [s["status"] for s in fake.signals()] == (["SUCCESS"] if result == "CONTINUE" else [])


def test_a_lifecycle_action_completed_before_is_not_a_failure(fake, tmp_path):
    """A reboot reruns signal --wait-registered: the hook was completed at the first boot."""
    config = {"on_failure": ["lifecycle"], "lifecycle_hook": HOOK}
    assert kb(fake, tmp_path, "--success", config=config).returncode == 0
    r = kb(fake, tmp_path, "--success", config=config)
    assert r.returncode == 0, r.stderr
    assert "no pending lifecycle action" in r.stderr
    assert len(fake.autoscaling_calls()) == 2


def test_stack_not_waiting_for_signals_is_not_a_failure(fake, tmp_path):
    fake.set_stack_waiting(STACK_ARN, "BrokerGroup", False)
    r = kb(fake, tmp_path, "--success")
    assert r.returncode == 0, r.stderr
    assert "not waiting for signals" in r.stderr


def cfn_signal_stub(tmp_path, message, status):
    """An operator's cfn-signal that records its arguments, prints message and exits status."""
    stub = tmp_path / "cfn-signal"
    stub.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\n"
                    f"echo '{message}' >&2\nexit {status}\n")
    stub.chmod(0o755)
    return stub


def test_with_cfn_signal_a_stack_not_waiting_for_signals_is_not_a_failure(fake, tmp_path):
    """A replacement booted after the stack settled: cfn-signal prints AWS's ValidationError
    and exits 1, which is the native path's "not waiting", not exit 14."""
    stub = cfn_signal_stub(tmp_path, f"ValidationError: Stack {STACK_ARN} is in "
                           "CREATE_COMPLETE state and cannot be signaled", 1)
    r = kb(fake, tmp_path, "--success", config={"signal_mode": "cfn-signal",
                                                "cfn_signal_path": str(stub)})
    assert r.returncode == 0, r.stderr
    assert "not waiting for signals" in r.stderr
    # Names, status and region on the command line; no credential (it finds its own).
    assert (tmp_path / "cfn-signal.args").read_text().splitlines() == [
        "--success", "true", "--stack", STACK_ARN, "--resource", "BrokerGroup",
        "--region", "us-east-1", "--id", INSTANCE]
    assert fake.signals() == []


def test_with_cfn_signal_any_other_refusal_exits_14_with_its_message(fake, tmp_path):
    stub = cfn_signal_stub(tmp_path, "AccessDenied: not authorized to perform: "
                           "cloudformation:SignalResource", 1)
    r = kb(fake, tmp_path, "--success", config={"signal_mode": "cfn-signal",
                                                "cfn_signal_path": str(stub)})
    assert r.returncode == 14, r.stderr
    assert "exited with status 1: AccessDenied: not authorized" in r.stderr


def test_configured_names_win_over_tags(fake, tmp_path):
    r = kb(fake, tmp_path, "--failure", config={"stack_name": "kafka-test",
                                                "logical_resource_id": "BrokerGroup",
                                                "on_failure": ["signal"]})
    assert r.returncode == 0, r.stderr
    assert [s["stack"] for s in fake.signals()] == ["kafka-test"]


def test_without_metadata_tags_the_names_come_from_describe_tags(tmp_path):
    def no_metadata_tags(fixture):
        for instance in fixture["instances"]:
            instance["metadata_tags"] = False
        fixture["roles"]["kafka-broker"] = sorted(set(fixture["roles"]["kafka-broker"]) |
                                                  {"ec2:DescribeTags"})

    fake = start_fake(no_metadata_tags)
    try:
        r = kb(fake, tmp_path, "--failure")
        assert r.returncode == 0, r.stderr
        assert actions(fake).count("DescribeTags") == 1
        # After DescribeTags answered, IMDS is not asked for the logical id and the group.
        assert tag_reads(fake) == ["aws:cloudformation:stack-id"]
        assert [s["stack"] for s in fake.signals()] == [STACK_ARN]
    finally:
        fake.stop()


def no_metadata_tags_and_describe_tags_denied(fixture):
    """The template's role lacks ec2:DescribeTags and IMDS tags are off."""
    fixture["roles"]["kafka-broker"] = [a for a in fixture["roles"]["kafka-broker"]
                                        if a != "ec2:DescribeTags"]
    for instance in fixture["instances"]:
        instance["metadata_tags"] = False


def test_a_stack_that_cannot_be_named_still_leaves_the_instance_marked_unhealthy(tmp_path):
    """SetInstanceHealth needs only the instance id: an unreadable stack tag stops the FAILURE
    signal alone, and the error names the keys that would have given the stack."""
    fake = start_fake(no_metadata_tags_and_describe_tags_denied)
    try:
        r = kb(fake, tmp_path, "--failure")
        assert r.returncode == 14, r.stderr
        assert [(c["action"], c["params"]["InstanceId"], c["params"]["HealthStatus"])
                for c in fake.autoscaling_calls()] == [
            ("SetInstanceHealth", INSTANCE, "Unhealthy")]
        assert fake.signals() == []
        assert ("FAILURE not signalled: stack or logical id unknown (config stack_name and "
                "logical_resource_id); reading the instance's tags: ") in r.stderr
        assert "UnauthorizedOperation" in r.stderr
        # A denial is asked once, not once per name.
        assert actions(fake).count("DescribeTags") == 1
    finally:
        fake.stop()


def test_a_lifecycle_hook_is_completed_when_only_its_group_is_known(tmp_path):
    fake = start_fake(no_metadata_tags_and_describe_tags_denied)
    try:
        config = {"on_failure": ["signal", "lifecycle"], "lifecycle_hook": HOOK,
                  "autoscaling_group": GROUP, "logical_resource_id": "BrokerGroup"}
        r = kb(fake, tmp_path, "--failure", config=config)
        assert r.returncode == 14, r.stderr
        assert [(c["action"], c["params"]["LifecycleActionResult"])
                for c in fake.autoscaling_calls()] == [("CompleteLifecycleAction", "ABANDON")]
        assert "stack or logical id unknown (config stack_name)" in r.stderr
    finally:
        fake.stop()


def test_every_channel_that_cannot_be_named_is_in_the_error(tmp_path):
    fake = start_fake(no_metadata_tags_and_describe_tags_denied)
    try:
        config = {"on_failure": ["signal", "unhealthy", "lifecycle"], "lifecycle_hook": HOOK}
        r = kb(fake, tmp_path, "--failure", config=config)
        assert r.returncode == 14, r.stderr
        assert [c["action"] for c in fake.autoscaling_calls()] == ["SetInstanceHealth"]
        error = [line for line in r.stderr.splitlines() if " error " in line]
        assert len(error) == 1, r.stderr
        assert "(config stack_name and logical_resource_id)" in error[0]
        assert (f"lifecycle hook {HOOK} not completed with ABANDON: Auto Scaling group unknown "
                "(config autoscaling_group)") in error[0]
        # The one cause, DescribeTags denied, is said once.
        assert error[0].count("UnauthorizedOperation") == 1, error[0]
    finally:
        fake.stop()


def test_signal_mode_none_sends_nothing_to_cloudformation(fake, tmp_path):
    r = kb(fake, tmp_path, "--failure", config={"signal_mode": "none"})
    assert r.returncode == 0, r.stderr
    assert fake.signals() == []
    assert [c["action"] for c in fake.autoscaling_calls()] == ["SetInstanceHealth"]


def test_a_refused_signal_exits_14_and_still_marks_the_instance_unhealthy(tmp_path):
    def deny_signal(fixture):
        fixture["roles"]["kafka-broker"] = [a for a in fixture["roles"]["kafka-broker"]
                                            if a != "cloudformation:SignalResource"]

    fake = start_fake(deny_signal)
    try:
        r = kb(fake, tmp_path, "--failure")
        assert r.returncode == 14, r.stderr
        assert "AccessDenied" in r.stderr
        assert [c["action"] for c in fake.autoscaling_calls()] == ["SetInstanceHealth"]
    finally:
        fake.stop()


def test_signal_without_a_verdict_is_a_usage_error(fake, tmp_path):
    r = kb(fake, tmp_path)
    assert r.returncode == 64
