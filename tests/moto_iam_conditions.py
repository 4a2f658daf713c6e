"""moto_server evaluating the IAM condition the workers' list permissions rely on.

tests/integration/permissions.rs starts this instead of plain ``moto_server``. moto 5.2.5 passes no
request context to the conditions of an identity policy, knows only ``StringEquals`` (a statement
with any other operator applies unconditionally) and lets a failed condition deny the request
before it checks the statement's resource. The workers' task roles scope ``s3:ListBucket`` with
``StringLike`` on ``s3:prefix`` (infra/iam.tf), so with plain moto a worker could list any prefix
and the test would not notice. Here, as in AWS:

- an S3 request's context holds ``s3:prefix`` (the ``prefix`` of a ListObjects request);
- ``StringLike`` matches with ``*`` and ``?`` wildcards, and is false when the key is absent;
- a statement whose resource or condition does not match does not apply (neither allows nor denies);
- a multi-object delete (``POST ?delete``, which object_store also uses for a single delete) needs
  ``s3:DeleteObject`` on each key it names, not on the bucket.

Everything else is moto's own. Arguments are moto_server's (``-H 127.0.0.1 -p PORT``).
"""

import html
import re
import sys
from urllib.parse import parse_qs, urlparse

from moto.iam import access_control, policy_conditions
from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult, S3IAMRequest


def string_like(expected, actual: str) -> bool:
    patterns = [expected] if isinstance(expected, str) else list(expected)
    for pattern in patterns:
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        if re.fullmatch(regex, actual, flags=re.DOTALL):
            return True
    return False


policy_conditions.CONDITION_OPERATIONS["StringLike"] = string_like
_verify = policy_conditions.TrustCondition.verify_condition


def verify_condition(self, actual_values):
    if self._condition == "StringLike" and not actual_values:
        return False
    return _verify(self, actual_values)


policy_conditions.TrustCondition.verify_condition = verify_condition


def statement_is_action_permitted(self, action, resource="*", principal=None,
                                  incoming_condition_values=None):
    if "NotAction" in self._statement:
        concerned = not self._check_element_matches("NotAction", action)
    else:
        concerned = self._check_element_matches("Action", action)
    if not concerned or self.is_unknown_principal(self._statement.get("Principal")):
        return PermissionResult.NEUTRAL
    if principal and not self._check_principal(principal):
        return PermissionResult.DENIED
    if not self._statement.get("Resource"):  # a trust policy
        if self._check_conditions(incoming_condition_values):
            return PermissionResult.PERMITTED
        return PermissionResult.DENIED
    if not self._check_element_matches("Resource", resource):
        return PermissionResult.NEUTRAL
    if not self._check_conditions(incoming_condition_values):
        return PermissionResult.NEUTRAL
    if self._statement["Effect"] == "Allow":
        return PermissionResult.PERMITTED
    return PermissionResult.DENIED


IAMPolicyStatement.is_action_permitted = statement_is_action_permitted


def s3_check_action_permitted(self, resource: str) -> None:
    query = parse_qs(urlparse(self._path).query, keep_blank_values=True)
    if "delete" in query and self._action == "s3:DeleteObject" and "/" not in resource.split(":::", 1)[1]:
        body = self._body.decode() if isinstance(self._body, bytes) else str(self._body or "")
        keys = [html.unescape(k) for k in re.findall(r"<Key>(.*?)</Key>", body, flags=re.DOTALL)]
        if not keys:
            self._raise_access_denied()
        for key in keys:
            _check(self, f"{resource}/{key}", {})
        return
    context = {"s3:prefix": query["prefix"][0]} if query.get("prefix", [""])[0] else {}
    _check(self, resource, context)


def _check(self, resource: str, context: dict) -> None:
    permitted = False
    for policy in self._access_key.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(self._action, resource, None, context)
        if result == PermissionResult.DENIED:
            self._raise_access_denied()
        elif result == PermissionResult.PERMITTED:
            permitted = True
    if not permitted:
        self._raise_access_denied()


S3IAMRequest.check_action_permitted = s3_check_action_permitted
assert access_control.S3IAMRequest.check_action_permitted is s3_check_action_permitted

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
