"""One exception type for every refusal the fake answers with.

The world model raises it with EC2's or Auto Scaling's error code; the service front end
that caught it decides the wire format (EC2's `<Response><Errors>`, or the Query protocol's
`<ErrorResponse>` for CloudFormation and Auto Scaling).
"""


class ApiError(Exception):
    """An AWS error: code, message and HTTP status as AWS sends them."""

    def __init__(self, code, message, status=400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
