"""fakeaws: a fake AWS endpoint for kafka-bootstrap's tests (IMDSv2, EC2, CloudFormation,
Auto Scaling), faithful to the wire where the client could be flattered. See README.md."""

from .core import FakeAWS, Hooks

__all__ = ["FakeAWS", "Hooks"]
