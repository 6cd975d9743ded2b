"""IAM SimulatePrincipalPolicy for roles, which moto lacks and SDK v3's ModelTrainer calls first.

The decision per action and resource comes from moto's own policy evaluator over the role's
inline and attached policies (explicit deny > allow > implicit deny), as IAM's simulator decides
without conditions, permissions boundaries or organization policies.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from localcloud import config

ACTION = "SimulatePrincipalPolicy"
_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"


class IamError(Exception):
    """An IAM error in the query protocol's shape."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def form(raw: bytes) -> dict[str, list[str]]:
    """The query protocol's form body."""
    return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)


def handles(params: dict[str, list[str]]) -> bool:
    """Only SimulatePrincipalPolicy; every other IAM call is moto's."""
    return params.get("Action", [""])[0] == ACTION


def _members(params: dict[str, list[str]], name: str) -> list[str]:
    """`Name.member.1`, `Name.member.2`, ... in order."""
    found = []
    for key, values in params.items():
        prefix, _, index = key.rpartition(".member.")
        if prefix == name and index.isdigit():
            found.append((int(index), values[0]))
    return [value for _, value in sorted(found)]


def _role_policies(arn: str) -> list[Any]:
    """moto's policy objects for every inline and attached policy of the role at arn."""
    from moto.iam.access_control import IAMPolicy
    from moto.iam.models import iam_backends

    if ":role/" not in arn:
        raise IamError("InvalidInput", f"Invalid ARN: {arn!r} is not the ARN of a role.")
    backend = iam_backends[config.ACCOUNT_ID]["aws"]
    name = arn.rsplit("/", 1)[-1]
    role = next((r for r in backend.roles.values() if r.arn == arn), None)
    if role is None:
        raise IamError("NoSuchEntity", f"The role with name {name} cannot be found.", 404)
    return [IAMPolicy(doc) for doc in role.policies.values()] + [
        IAMPolicy(policy) for policy in role.managed_policies.values()
    ]


def _decision(policies: list[Any], action: str, resource: str) -> str:
    from moto.iam.access_control import PermissionResult

    results = {p.is_action_permitted(action, resource) for p in policies}
    if PermissionResult.DENIED in results:
        return "explicitDeny"
    return "allowed" if PermissionResult.PERMITTED in results else "implicitDeny"


def simulate(params: dict[str, list[str]]) -> list[dict[str, str]]:
    """One EvaluationResult per action (and resource, when ResourceArns are given)."""
    source = params.get("PolicySourceArn", [""])[0]
    actions = _members(params, "ActionNames")
    if not source or not actions:
        missing = "policySourceArn" if not source else "actionNames"
        raise IamError(
            "ValidationError",
            f"1 validation error detected: Value null at '{missing}' failed to satisfy "
            "constraint: Member must not be null",
        )
    policies = _role_policies(source)
    resources = _members(params, "ResourceArns") or ["*"]
    return [
        {"EvalActionName": a, "EvalResourceName": r, "EvalDecision": _decision(policies, a, r)}
        for a in actions
        for r in resources
    ]


def _xml(tag: str, body: str) -> Response:
    return Response(
        f'<{tag} xmlns="{_XMLNS}">{body}<ResponseMetadata><RequestId>{uuid.uuid4()}'
        f"</RequestId></ResponseMetadata></{tag}>",
        200,
        content_type="text/xml",
    )


def answer(params: dict[str, list[str]]) -> Response:
    """The XML answer botocore's query parser reads, or IAM's error document."""
    try:
        results = simulate(params)
    except IamError as exc:
        body = (
            f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>Sender</Type>'
            f"<Code>{exc.code}</Code><Message>{escape(exc.message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return Response(body, exc.status, content_type="text/xml")
    members = "".join(
        "<member>"
        + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in result.items())
        + "<MatchedStatements/><MissingContextValues/></member>"
        for result in results
    )
    return _xml(
        "SimulatePrincipalPolicyResponse",
        f"<SimulatePrincipalPolicyResult><EvaluationResults>{members}</EvaluationResults>"
        "<IsTruncated>false</IsTruncated></SimulatePrincipalPolicyResult>",
    )
