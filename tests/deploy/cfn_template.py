"""cfn_template.py: the CloudFormation template as tests read it.

A PyYAML loader that turns the short forms (!Ref, !Sub, !GetAtt ...) into the long forms
CloudFormation itself sees, and the actions the brokers' IAM role is granted, read from the
template so a test can compare them with the actions the simulated cluster called:

    from deploy.cfn_template import load, role_actions
    assert role_actions(load()) == recorded_actions
"""
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "kafka-brokers.yaml"


class _Loader(yaml.SafeLoader):
    """SafeLoader plus every !Tag as CloudFormation's {"Fn::Tag": ...} (!Ref as {"Ref": ...})."""


def _construct(loader, suffix, node):
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _construct)


def parse(text):
    return yaml.load(text, Loader=_Loader)


def load(path=TEMPLATE):
    return parse(Path(path).read_text(encoding="utf-8"))


def _as_list(value):
    return value if isinstance(value, list) else [value]


def statements(template, logical_id):
    """The statements of an AWS::IAM::Role's inline policies or of an AWS::IAM::Policy."""
    resource = template["Resources"][logical_id]
    props = resource["Properties"]
    if resource["Type"] == "AWS::IAM::Role":
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
    else:
        documents = [props["PolicyDocument"]]
    return [s for d in documents for s in _as_list(d["Statement"])]


def role_actions(template=None, logical_id="BrokerRole"):
    """Sorted actions the Allow statements of the role grant, as written ("ec2:AttachVolume")."""
    template = template if template is not None else load()
    found = set()
    for statement in statements(template, logical_id):
        if statement.get("Effect") == "Allow":
            found.update(_as_list(statement["Action"]))
    return sorted(found)


def take_over_actions(template=None):
    """What TakeOverStopped=true adds (the TakeOverPolicy resource, conditional)."""
    return role_actions(template, "TakeOverPolicy")
