"""Offline stand-in for `terraform validate` on infra/ (run by scripts/lint-infra).

terraform is not installable from the package registries this project uses, so this checks what it
can without it, and exits 1 on any failure:

1. every .tf file parses with pygohcl (HashiCorp's Go HCL library, the parser terraform uses) and
   with bc-python-hcl2 (the parser checkov uses: a file it cannot read would be skipped silently);
2. every reference resolves: var.X to a variable block, local.X to a locals entry, data.T.N to a
   data block, T.N (T = aws_*) to a resource block; a moved block's `from` is no longer declared
   and its `to` is; terraform.tfvars.example sets only declared variables;
3. variable validations accept the defaults and good examples and reject bad ones (a value is
   rejected when any validation of its variable fails, where named with the message expected),
   evaluated with HCL's own evaluator (conditions that use a function it lacks, such as length or
   alltrue, are reported as not evaluated);
4. each Glue table in athena_glue.tf has its DDL in sql/ddl, and the column regex athena_glue.tf
   applies to it finds the columns (Python's `re` and Terraform's RE2 agree on this pattern);
5. settings rendered offline with HCL's evaluator (see Renderer), with the variables' defaults
   plus terraform.tfvars.example and with variations of them:
   - retention: every top-level prefix of the lake (docs/WORKERS.md "Data layout and manifests" and
     worker_access.json) has exactly one entry in local.lake_retention (s3.tf) or in
     local.lake_never_expire, models/ is in the latter, a null retention drops the prefix's rule,
     and the lifecycle rules are generated from local.lake_expiring under the data prefix;
   - ECR: the lifecycle policy's rule 1 selects exactly var.image_tag (tagPatternList, tagged)
     with a count it cannot exceed, each extra protected tag has its own rule, and the keep-newest
     rule (tagStatus any) has the highest priority;
   - Airflow: aws_iam_policy.airflow is attached to the self-hosted role and to the MWAA execution
     role (each when its variable is set), and allows what the DAG calls;
   - preconditions of the task definitions hold for every worker with the example and fail, for
     the worker concerned only, for inconsistent extract_source / source_s3_paths combinations;
   - alerts: the EventBridge pattern renders to JSON that matches a stopped task of this cluster
     with a non-zero exit code or a failed start, and nothing else (a matcher for the operators
     used, per EventBridge's documented semantics), and the rule targets the encrypted topic,
     whose policy admits only that rule;
   - TLS only: both bucket policies and the topic policy include the DenyInsecureTransport
     statement of data.aws_iam_policy_document.tls_only.
"""

import json
import pathlib
import re
import sys

import hcl2
import pygohcl

infra = pathlib.Path(__file__).resolve().parent
root = infra.parent
errors = []

files = sorted(p for p in infra.glob("*.tf"))
parsed = {}
for tf in files:
    text = tf.read_text()
    try:
        parsed[tf.name] = pygohcl.loads(text)
    except Exception as e:
        errors.append(f"{tf.name}: HCL parse error (pygohcl): {e}")
    try:
        hcl2.loads(text)
    except Exception as e:
        errors.append(f"{tf.name}: parse error in checkov's parser (bc-python-hcl2): {e}")

# --- offline rendering of expressions --------------------------------------------------------------
# pygohcl evaluates one variable's validation condition, and its error message as a template. That
# is enough to render any expression of this configuration: every var.X becomes var.tf.X of one
# object variable `tf` holding the values under test, local.X is inlined, resource attributes and
# each.key become placeholder values in that object, and the result comes back as the text of the
# error message "${jsonencode(<expression>)}". Two limits of pygohcl are worked around: the message
# must be one line without string literals (each literal is moved into `tf`, a template becomes
# format(<its literal parts>, <its interpolations>)), and functions it lacks (POLYFILLS) are
# computed here from their rendered arguments.

def _tf_blocks(text, header):
    """Bodies of the top-level blocks whose header matches the regex `header` (comments kept)."""
    out = []
    for m in re.finditer(header + r"\s*\{", text, re.M):
        i, depth = m.end(), 1
        j = i
        while depth:
            c = text[j]
            if c == '"':
                j = _skip_string(text, j)
                continue
            if c == "#" or text.startswith("//", j):
                j = text.index("\n", j)
                continue
            depth += {"{": 1, "}": -1}.get(c, 0)
            j += 1
        out.append(text[i : j - 1])
    return out


def _skip_string(s, i):
    """Index after the quoted template starting at s[i] == '"'."""
    j = i + 1
    while s[j] != '"':
        if s[j] == "\\":
            j += 2
        elif s.startswith("${", j):
            j = _skip_expr(s, j + 2, "}") + 1
        else:
            j += 1
    return j + 1


def _skip_expr(s, i, close):
    """Index of the `close` character that ends the expression starting at s[i]."""
    depth = 0
    while True:
        c = s[i]
        if c == '"':
            i = _skip_string(s, i)
            continue
        if depth == 0 and c == close:
            return i
        depth += {"{": 1, "[": 1, "(": 1, "}": -1, "]": -1, ")": -1}.get(c, 0)
        i += 1


def _attributes(body):
    """name -> expression source of the attributes at the top level of a block body."""
    attrs, i = {}, 0
    while i < len(body):
        m = re.compile(r"[ \t]*([A-Za-z_][\w-]*)[ \t]*=(?!=)").match(body, i)
        if m and (i == 0 or body[i - 1] == "\n"):
            j = m.end()
            while True:  # up to the end of line at depth 0
                c = body[j] if j < len(body) else "\n"
                if c == "\n":
                    break
                if c == '"':
                    j = _skip_string(body, j)
                elif c in "{[(":
                    j = _skip_expr(body, j + 1, {"{": "}", "[": "]", "(": ")"}[c]) + 1
                elif c == "#":
                    j = body.index("\n", j)
                else:
                    j += 1
            attrs[m.group(1)] = body[m.end() : j].strip()
            i = j
        elif body[i] == "{":
            i = _skip_expr(body, i + 1, "}") + 1
        elif body[i] == '"':
            i = _skip_string(body, i)
        elif body[i] == "#" or body.startswith("//", i):
            i = body.index("\n", i)
        else:
            i += 1
    return attrs


POLYFILLS = {
    "length": len,
    "alltrue": all,
    "anytrue": any,
    "startswith": lambda s, p: s.startswith(p),
    "one": lambda xs: xs[0] if xs else None,
}

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class Renderer:
    def __init__(self, locals_src, fakes):
        self.locals_src = locals_src  # local name -> expression source
        self.fakes = fakes  # "aws_x.y.attr" / "each.key" -> value

    def render(self, expr, values):
        """The value of the expression `expr` with variables `values` (name -> Python value)."""
        self.hoisted = {}
        src = re.sub(r"\s+", " ", self._rewrite(expr, values))
        tf = dict(values, **self.hoisted)
        try:
            pygohcl.eval_var_condition("false", "${jsonencode(" + src + ")}", "tf", _hcl_literal(tf))
        except pygohcl.ValidationError as e:
            text = str(e)
        try:
            return json.loads(text)
        except ValueError:
            raise RenderError(f"{text} (rendering {expr[:80]}...)") from None

    def _hoist(self, value):
        name = f"_h{len(self.hoisted)}"
        self.hoisted[name] = value
        return f"(var.tf.{name})"

    def _rewrite(self, s, values):
        out, i, stack = [], 0, []
        while i < len(s):
            c = s[i]
            if c in "{[(":
                is_for = c == "{" and re.match(r"\s*for\s", s[i + 1 :])
                stack.append("F" if is_for else c)
            elif c in "}])" and stack:
                stack.pop()
            if c == "\n":
                # The message is one line: items of an object constructor, separated by newlines in
                # the source, get commas instead.
                prev = "".join(out).rstrip()[-1:]
                nxt = re.compile(r"(\s|#[^\n]*|//[^\n]*)*").match(s, i).end()
                if stack and stack[-1] == "{" and prev not in ("{", ",", "") and s[nxt : nxt + 1] not in ("}", ""):
                    out.append(", ")
                else:
                    out.append(" ")
                i += 1
            elif c == '"':
                j = _skip_string(s, i)
                out.append(self._template(s[i + 1 : j - 1], values))
                i = j
            elif c == "#" or s.startswith("//", i):
                i = s.find("\n", i) if "\n" in s[i:] else len(s)
            elif c in "{}[]()":
                out.append(c)
                i += 1
            elif re.match(r"[A-Za-z_]", c) and (i == 0 or not re.match(r"[\w.]", s[i - 1])):
                m = re.compile(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*").match(s, i)
                ref = m.group(0)
                head = ref.split(".")
                j = m.end()
                if head[0] == "var":
                    out.append("var.tf." + ".".join(head[1:]))
                elif head[0] == "local":
                    out.append("(" + self._rewrite(self.locals_src[head[1]], values) + ")")
                    if len(head) > 2:
                        out.append("." + ".".join(head[2:]))
                elif ref in self.fakes or re.match(r"(data\.)?aws_\w+\.\w+\.\w+$", ref):
                    key = ref if ref in self.fakes else ref
                    out.append(self._hoist(self.fakes.get(key, f"<{ref}>")))
                elif head[0] in POLYFILLS and s[j : j + 1] == "(":
                    end = _skip_expr(s, j + 1, ")")
                    args = _split_args(s[j + 1 : end])
                    rendered = [self._sub_render(a, values) for a in args]
                    out.append(self._hoist(POLYFILLS[head[0]](*rendered)))
                    j = end + 1
                else:
                    out.append(ref)
                i = j
            else:
                out.append(c)
                i += 1
        return "".join(out)

    def _sub_render(self, expr, values):
        saved = self.hoisted
        try:
            return self.render(expr, values)
        finally:
            self.hoisted = saved

    def _template(self, body, values):
        parts, exprs, i, lit = [], [], 0, []
        while i < len(body):
            if body.startswith("$${", i):
                lit.append("${")
                i += 3
            elif body.startswith("${", i):
                end = _skip_expr(body, i + 2, "}")
                parts.append("".join(lit).replace("%", "%%"))
                lit = []
                exprs.append(self._rewrite(body[i + 2 : end], values))
                i = end + 1
            elif body[i] == "\\":
                lit.append(_ESCAPES.get(body[i + 1], body[i + 1]))
                i += 2
            else:
                lit.append(body[i])
                i += 1
        if not exprs:
            return self._hoist("".join(lit))
        fmt = "%v".join(parts) + "%v" + "".join(lit).replace("%", "%%")
        return f"format({self._hoist(fmt)}, {', '.join(exprs)})"


class RenderError(Exception):
    pass


def _split_args(s):
    args, i, start = [], 0, 0
    while i < len(s):
        c = s[i]
        if c == '"':
            i = _skip_string(s, i)
            continue
        if c in "{[(":
            i = _skip_expr(s, i + 1, {"{": "}", "[": "]", "(": ")"}[c]) + 1
            continue
        if c == ",":
            args.append(s[start:i])
            start = i + 1
        i += 1
    if s[start:].strip():
        args.append(s[start:])
    return args


def _hcl_literal(value):
    """A Python value as an HCL literal: JSON, with template sequences escaped."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


# --- 2. references ---------------------------------------------------------------------------------
variables, locals_, resources, data = {}, set(), set(), set()
for doc in parsed.values():
    variables.update(doc.get("variable", {}))
    for block in doc.get("locals", []) if isinstance(doc.get("locals"), list) else [doc.get("locals", {})]:
        locals_.update(block)
    for rtype, named in doc.get("resource", {}).items():
        resources.update(f"{rtype}.{n}" for n in named)
    for dtype, named in doc.get("data", {}).items():
        data.update(f"{dtype}.{n}" for n in named)

# What a reference looks like, where its target must be declared, and what is wrong if it is not.
REFERENCES = [
    (r"\bvar\.(\w+)", variables, "var.{} is not declared"),
    (r"\blocal\.(\w+)", locals_, "local.{} is not defined"),
    (r"\bdata\.(aws_\w+\.\w+)", data, "data.{} is not defined"),
    (r"(?<![\w.\"])(aws_\w+\.\w+)", resources, "{} is not a resource"),
]
MOVED = re.compile(r"^moved\s*\{\s*from\s*=\s*((aws_\w+\.\w+)\S*)\s+to\s*=\s*((aws_\w+\.\w+)\S*)\s*\}", re.M)

for tf in files:
    # Strings are scanned too (interpolations); comments are dropped first.
    text = re.sub(r"(?m)^\s*#.*$", "", tf.read_text())
    # A moved block's `from` names an address that is no longer declared (terraform refuses one
    # that is), its `to` a declared resource.
    for old, old_resource, new, new_resource in MOVED.findall(text):
        if old == old_resource and old in resources:
            errors.append(f"{tf.name}: moved from {old}, which is still declared")
        if new_resource not in resources:
            errors.append(f"{tf.name}: moved to {new}, which is not a resource")
    text = MOVED.sub("", text)
    for pattern, declared, message in REFERENCES:
        for ref in sorted(set(re.findall(pattern, text)) - set(declared)):
            errors.append(f"{tf.name}: {message.format(ref)}")

for example in sorted(infra.glob("*.tfvars.example")):
    try:
        for name in pygohcl.loads(example.read_text()):
            if name not in variables:
                errors.append(f"{example.name}: sets undeclared variable {name}")
    except Exception as e:
        errors.append(f"{example.name}: HCL parse error (pygohcl): {e}")

# --- 3. variable validations -------------------------------------------------------------------------

def _retention(**days):
    """var.lake_expiration_days's default with some days changed (... = the key left out), as HCL."""
    value = dict(variables["lake_expiration_days"]["default"], **days)
    return json.dumps({k: d for k, d in value.items() if d is not ...})


# variable: (values that must pass, values that must fail), as HCL literals.
cases = {
    "region": (['"eu-west-1"', '"us-gov-west-1"'], ['"EU"', '"us-east"']),
    "name_prefix": (['"repurchase"'], ['"Repurchase"', '"r"', '"x-"']),
    "data_prefix": (['"prod"', '"env/prod"'], ['""', '"/prod"', '"prod/"', '"a b"']),
    "vpc_id": (['"vpc-0123456789abcdef0"'], ['"vpc-xyz"', '"subnet-01234567"']),
    "image_tag": (['"3f2a9c1d0b7e"', '"v1.2.3"'], ['"latest"', '"-x"', '"a:b"']),
    "log_group_name": (['"/ecs/repurchase"'], ['""', '"a b"']),
    "log_retention_days": (["365"], ["100"]),
    "lake_expiration_days": (
        [_retention(raw=None, features=None, scores=None, backtests=None),
         _retention(raw=7, features=90, scores=90, score_shards=3, backtests=30, staging=1, locks=1), _retention(locks=30)],
        [(_retention(raw=6), "raw 7"), (_retention(features=89), "features and scores 90"), (_retention(scores=60), "scores 90"),
         (_retention(score_shards=2), "score_shards 3"), (_retention(backtests=29), "backtests 30"),
         (_retention(staging=0), "staging and locks 1"), (_retention(locks=0), "locks 1"), (_retention(locks=31), "at most 30"),
         (_retention(score_shards=None), "score_shards, staging and locks need"), (_retention(staging=None), "staging and locks need"),
         (_retention(locks=None), "locks need"), (_retention(locks=...), "exactly the keys"),
         (_retention(models=400), "exactly the keys")],
    ),
    "ecr_protected_tags": (['["fedcba987654", "v1.2.3"]', "[]"], ['["latest"]', '["prod*"]', '["ok", "a:b"]']),
    "airflow_assume_role_principals": (
        ['["ecs-tasks.amazonaws.com"]', '["arn:aws:iam::123456789012:role/airflow-workers", "ec2.amazonaws.com"]',
         '["arn:aws:iam::123456789012:root"]'],
        ['["*"]', '["arn:aws:iam::123456789012:role/*"]', '["123456789012"]', '["ecs-tasks"]'],
    ),
    "airflow_mwaa_execution_role_name": (['"AmazonMWAA-prod-AbCdEf"', "null"], ['"arn:aws:iam::123456789012:role/x"', '""']),
    "alert_email_addresses": (['["data-team@example.com"]'], ['["data-team"]', '["a b@example.com"]']),
    "alert_ignored_exit_codes": (["[75]", "[2, 65]"], ["[0]", "[256]", "[1.5]"]),
    "glue_database_name": (['"repurchase"'], ['"Repurchase"', '"1db"']),
    "athena_source_database": (['"thelook_ecommerce"'], ['"thelook-ecommerce"']),
    "athena_timeout_secs": (["1800"], ["10"]),
    "extract_source": (['"athena"', '"s3://my-bucket/thelook"'], ['"file:///x"', '"bigquery"']),
}
# Conditions whose function HCL's evaluator lacks *inside can()*, which then just yields false.
CANNOT_EVALUATE = {"egress_cidr"}  # cidrhost
evaluated, not_evaluated = 0, []
for name, spec in variables.items():
    validations = spec.get("validation", [])
    if isinstance(validations, dict):
        validations = [validations]
    if not validations:
        continue
    if name in CANNOT_EVALUATE:
        not_evaluated.append(name)
        continue
    good, bad = cases.get(name, ([], []))
    if "default" in spec and spec["default"] is not None:
        good = good + [json.dumps(spec["default"])]
    unknown = set()  # the validations that call a function HCL's evaluator lacks

    def rejections(value):
        """The error messages of the validations that reject `value` (as terraform does, a value
        is rejected when any of its variable's validations fails)."""
        out = []
        for i, v in enumerate(validations):
            try:
                pygohcl.eval_var_condition(v["condition"], v["error_message"], name, value)
            except pygohcl.UnknownFunctionError:
                unknown.add(i)
            except pygohcl.ValidationError as e:
                out.append(str(e))
        return out

    for value in good:
        for message in rejections(value):
            errors.append(f"variable {name}: rejects good value {value}: {message}")
    # A bad value is an HCL literal, or (literal, what the message rejecting it must mention).
    for value, wanted in (b if isinstance(b, tuple) else (b, "") for b in bad):
        messages = rejections(value)
        if not messages and not unknown:
            errors.append(f"variable {name}: accepts bad value {value}")
        elif messages and not any(wanted in m for m in messages):
            errors.append(f"variable {name}: rejects {value}, but no message mentions {wanted!r}: {messages}")
    evaluated += len(validations) - len(unknown)
    not_evaluated += [name] * len(unknown)

# --- 4. Glue tables against sql/ddl --------------------------------------------------------------------
glue = (infra / "athena_glue.tf").read_text()
tables = re.search(r"glue_tables = \{(.*?)\n  \}", glue, re.S)
names = re.findall(r"^\s+(\w+)\s+=", tables.group(1), re.M) if tables else []
if not names:
    errors.append("athena_glue.tf: no glue_tables found")
for name in names:
    ddl = root / "sql" / "ddl" / f"{name}.sql"
    if not ddl.exists():
        errors.append(f"Glue table {name}: {ddl.relative_to(root)} is missing")
        continue
    block = re.search(
        r"(?s)CREATE EXTERNAL TABLE IF NOT EXISTS \w+ \((.*?)\n\)\s*PARTITIONED BY", ddl.read_text()
    )
    cols = re.findall(r"`(\w+)`\s+([A-Z]\w*)", block.group(1)) if block else []
    if not cols:
        errors.append(f"{ddl.relative_to(root)}: no columns found")

# --- 5. settings rendered offline ---------------------------------------------------------------------
all_text = "\n".join(tf.read_text() for tf in files)
locals_src = {}
for body in _tf_blocks(all_text, r"^locals"):
    locals_src.update(_attributes(body))
ACCOUNT, REGION = "123456789012", "us-east-1"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/repurchase"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/repurchase-task-failed"
fakes = {
    "data.aws_caller_identity.current.account_id": ACCOUNT,
    "data.aws_partition.current.partition": "aws",
    "aws_ecs_cluster.main.arn": CLUSTER_ARN,
    "aws_cloudwatch_event_rule.task_failed.arn": RULE_ARN,
}
renderer = Renderer(locals_src, fakes)

example_values = {}
for example in sorted(infra.glob("*.tfvars.example")):
    example_values.update(pygohcl.loads(example.read_text()))
base = {name: spec.get("default") for name, spec in variables.items()}
base.update(example_values)
rendered = []  # what was rendered, for the summary


def render(expr, each_key=None, **overrides):
    fakes["each.key"] = each_key
    return renderer.render(expr, dict(base, **overrides))


def resource_attrs(rtype, name):
    bodies = _tf_blocks(all_text, rf'^resource "{rtype}" "{name}"')
    return _attributes(bodies[0]) if bodies else {}


try:
    # Retention: the lake's top-level prefixes, from the documented layout and the workers' access.
    workers_doc = (root / "docs" / "WORKERS.md").read_text()
    layout = re.search(r"^#+ Data layout and manifests\s*```text\n(.*?)```", workers_doc, re.S | re.M)
    prefixes = set(re.findall(r"^  ([A-Za-z_]+)/", layout.group(1), re.M)) if layout else set()
    if not prefixes:
        errors.append('docs/WORKERS.md: no prefixes found in "Data layout and manifests"')
    access = json.loads((infra / "worker_access.json").read_text())
    for w in access["workers"].values():
        prefixes |= {p.split("/")[0] for p in w["read"] + w["write"]}
    prefixes = {p + "/" for p in prefixes}
    retention = render("local.lake_retention")
    never = set(render("local.lake_never_expire"))
    for p in sorted(prefixes):
        if (p in retention) == (p in never):
            errors.append(f"s3.tf: lake prefix {p} needs exactly one entry in local.lake_retention or local.lake_never_expire")
    for p in sorted((set(retention) | never) - prefixes):
        errors.append(f"s3.tf: {p} in the retention lists is no prefix of docs/WORKERS.md's data layout or worker_access.json")
    if "models/" not in never:
        errors.append("s3.tf: models/ (models, calibrations, champion decisions) must be in local.lake_never_expire")
    never_raw = dict(base["lake_expiration_days"], raw=None)
    if set(render("local.lake_expiring", lake_expiration_days=never_raw)) != {p for p, r in retention.items() if r["days"] is not None} - {"raw/"}:
        errors.append("s3.tf: local.lake_expiring must keep exactly the prefixes with a retention (null = no rule)")
    lifecycle = _tf_blocks(all_text, r'^resource "aws_s3_bucket_lifecycle_configuration" "lake"')
    if not lifecycle or not re.search(r'for_each = local\.lake_expiring\b', lifecycle[0]) or \
            'prefix = "${local.data_prefix}/${rule.key}"' not in lifecycle[0]:
        errors.append("s3.tf: the lake's lifecycle rules must be generated from local.lake_expiring, filtered on <data_prefix>/<prefix>")
    rendered.append(f"retention of {len(prefixes)} lake prefixes ({len(never)} kept)")

    # ECR: the deployed tag, then the extra protected tags, can never be expired.
    policy_src = resource_attrs("aws_ecr_lifecycle_policy", "workers").get("policy", "null")
    for extra in ([], ["fedcba987654", base["image_tag"]]):
        rules = json.loads(render(policy_src, ecr_protected_tags=extra))["rules"]
        protected = list(dict.fromkeys([base["image_tag"], *extra]))
        by_priority = sorted(rules, key=lambda r: r["rulePriority"])
        if len({r["rulePriority"] for r in rules}) != len(rules):
            errors.append("ecr.tf: rule priorities are not unique")
        first = by_priority[0]
        if first["rulePriority"] != 1 or first["selection"].get("tagPatternList") != [base["image_tag"]]:
            errors.append(f"ecr.tf: rule 1 must select exactly var.image_tag (tagPatternList), got {first}")
        for tag, rule in zip(protected, by_priority):
            sel = rule["selection"]
            if sel != {"tagStatus": "tagged", "tagPatternList": [tag], "countType": "imageCountMoreThan", "countNumber": sel.get("countNumber")} \
                    or not isinstance(sel["countNumber"], int) or sel["countNumber"] < 1 or rule["action"] != {"type": "expire"}:
                errors.append(f"ecr.tf: protected tag {tag}: rule {rule} is not a tagged, exact, count >= 1 selection")
        last = by_priority[-1]
        if len(rules) != len(protected) + 1 or last["selection"].get("tagStatus") != "any" \
                or last["selection"].get("countNumber") != base["ecr_keep_images"]:
            errors.append(f"ecr.tf: after the {len(protected)} protected tags, the last rule must be the keep-newest rule (tagStatus any): {rules}")
    rendered.append("the ECR lifecycle policy")

    # Airflow: the policy is attached, and allows what the DAG calls.
    attachments = [
        a for n in ("airflow", "airflow_mwaa")
        for a in [resource_attrs("aws_iam_role_policy_attachment", n)]
        if a.get("policy_arn") == "aws_iam_policy.airflow.arn"
    ]
    if not any(a.get("role") == "aws_iam_role.airflow[0].name" and "var.airflow_assume_role_principals" in a.get("count", "") for a in attachments):
        errors.append("iam.tf: aws_iam_policy.airflow is not attached to the self-hosted role aws_iam_role.airflow")
    if not any(a.get("role") == "var.airflow_mwaa_execution_role_name" and "var.airflow_mwaa_execution_role_name" in a.get("count", "") for a in attachments):
        errors.append("iam.tf: aws_iam_policy.airflow is not attached to var.airflow_mwaa_execution_role_name")
    airflow_doc = next(d for doc in parsed.values() for d in [doc.get("data", {}).get("aws_iam_policy_document", {}).get("airflow")] if d)
    stmts = airflow_doc["statement"] if isinstance(airflow_doc["statement"], list) else [airflow_doc["statement"]]
    granted = {a for s in stmts for a in s["actions"]}
    needed = {"ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "ecs:ListTasks", "ecs:DescribeTaskDefinition",
              "iam:PassRole", "logs:GetLogEvents", "logs:FilterLogEvents", "sns:Publish", "kms:GenerateDataKey*"}
    if needed - granted:
        errors.append(f"iam.tf: the Airflow policy lacks {sorted(needed - granted)}")
    run = [s for s in stmts if "ecs:RunTask" in s["actions"]]
    if not run or any("ecs:cluster" not in json.dumps(s.get("condition")) for s in run):
        errors.append("iam.tf: ecs:RunTask must be conditioned on ecs:cluster")

    # Preconditions of the task definitions.
    td = _tf_blocks(all_text, r'^resource "aws_ecs_task_definition" "worker"')[0]
    lifecycle_body = _tf_blocks(td, r"^  lifecycle")
    pre = [_attributes(b) for b in _tf_blocks(lifecycle_body[0], r"^    precondition")] if lifecycle_body else []
    workers = ["extract", "build-features", "train", "calibrate", "score"]

    def failing(**overrides):
        """(worker, error message) of every precondition that fails with these values."""
        out = []
        for w in workers:
            for c in pre:
                if render(c["condition"], each_key=w, **overrides) is not True:
                    out.append((w, c["error_message"]))
        return out

    if len(pre) < 3:
        errors.append("ecs.tf: the task definitions need the extract_source / source_s3_paths / features_engine preconditions")
    for case, overrides in {
        "terraform.tfvars.example": {},
        "an s3:// folder under a listed prefix": {"extract_source": "s3://my-thelook-bucket/thelook_ecommerce/csv/", "source_s3_paths": ["my-thelook-bucket/thelook_ecommerce"]},
        "an s3:// folder in a listed bucket": {"extract_source": "s3://my-thelook-bucket/csv", "source_s3_paths": ["other", "my-thelook-bucket"]},
        "the listed folder itself": {"extract_source": "s3://b.example/x/y", "source_s3_paths": ["b.example/x/y/"]},
        "features in Athena": {"features_engine": "athena"},
        "no source paths for a folder source": {"extract_source": "s3://b/x", "source_s3_paths": ["b/x"], "features_engine": "datafusion"},
    }.items():
        for w, msg in failing(**overrides):
            errors.append(f"ecs.tf: a precondition fails for {w} with {case}: {msg[:80]}")
    for case, overrides, wanted in [
        ("athena without source_s3_paths", {"extract_source": "athena", "source_s3_paths": []}, "S3 location"),
        ("an s3:// source in an unlisted bucket", {"extract_source": "s3://other/thelook", "source_s3_paths": ["my-thelook-bucket"]}, "not covered"),
        ("a sibling prefix", {"extract_source": "s3://b/thelook_ecommerce", "source_s3_paths": ["b/thelook"]}, "not covered"),
        ("no source_s3_paths for an s3:// source", {"extract_source": "s3://b/x", "source_s3_paths": []}, "not covered"),
        ("features in Athena with a database name build-features refuses", {"features_engine": "athena", "glue_database_name": "lake-db"}, "glue_database_name"),
    ]:
        got = failing(**overrides)
        concerned = "build-features" if "features" in case else "extract"
        if not got or {w for w, _ in got} != {concerned} or not all(wanted in m for _, m in got):
            errors.append(f"ecs.tf: preconditions with {case}: expected a failure for {concerned} only mentioning {wanted!r}, got {got}")
    rendered.append(f"{len(pre)} task definition preconditions")

    # Alerts: the pattern, the target, the topic.
    def eb_match(pattern, event):
        """EventBridge matching for the operators the pattern uses: exact values, anything-but,
        $or, nested objects (arrays of objects match if any element matches)."""
        for key, cond in pattern.items():
            if key == "$or":
                if not any(eb_match(p, event) for p in cond):
                    return False
                continue
            if not isinstance(event, dict) or key not in event:
                return False
            value = event[key]
            if isinstance(cond, dict):
                if not any(isinstance(v, dict) and eb_match(cond, v) for v in (value if isinstance(value, list) else [value])):
                    return False
                continue
            values = value if isinstance(value, list) else [value]
            def leaf(m, v):
                if isinstance(m, dict):
                    if set(m) != {"anything-but"}:
                        raise RenderError(f"matcher {m} is not supported by check_hcl.py")
                    excluded = m["anything-but"] if isinstance(m["anything-but"], list) else [m["anything-but"]]
                    return v not in excluded
                return m == v
            if not any(leaf(m, v) for m in cond for v in values):
                return False
        return True

    def event(last="STOPPED", codes=(1,), cluster=CLUSTER_ARN, stop="EssentialContainerExited"):
        containers = [{"name": "extract", **({} if c is None else {"exitCode": c})} for c in codes]
        return {"source": "aws.ecs", "detail-type": "ECS Task State Change",
                "detail": {"clusterArn": cluster, "lastStatus": last, "stopCode": stop, "containers": containers}}

    rule = resource_attrs("aws_cloudwatch_event_rule", "task_failed")
    for ignored, samples in {
        (): [(event(codes=(1,)), True), (event(codes=(65,)), True), (event(codes=(137,)), True),
             (event(codes=(0,)), False), (event(last="RUNNING"), False), (event(last="DEPROVISIONING"), False),
             (event(cluster=CLUSTER_ARN + "-other"), False),
             (event(codes=(None,), stop="TaskFailedToStart"), True)],
        (75,): [(event(codes=(75,)), False), (event(codes=(2,)), True)],
    }.items():
        pattern = json.loads(render(rule.get("event_pattern", "null"), alert_ignored_exit_codes=list(ignored)))
        json.loads(json.dumps(pattern))
        if not re.search(r'"exitCode": \[\{"anything-but": \[0', json.dumps(pattern)):
            errors.append(f"alerts.tf: the pattern must filter containers' exitCode with anything-but [0, ...]: {pattern}")
        for sample, want in samples:
            if eb_match(pattern, sample) != want:
                errors.append(f"alerts.tf: pattern {'matches' if not want else 'misses'} {json.dumps(sample['detail'])} (ignored {ignored})")
    target = resource_attrs("aws_cloudwatch_event_target", "task_failed_sns")
    topic = resource_attrs("aws_sns_topic", "alerts")
    if target.get("arn") != "aws_sns_topic.alerts.arn" or target.get("rule") != "aws_cloudwatch_event_rule.task_failed.name":
        errors.append("alerts.tf: the task_failed rule must target aws_sns_topic.alerts")
    if topic.get("kms_master_key_id") != "aws_kms_key.main.arn":
        errors.append("alerts.tf: the alerts topic must be encrypted with aws_kms_key.main")
    topic_doc = _tf_blocks(all_text, r'^data "aws_iam_policy_document" "alerts_topic"')[0]
    if "events.amazonaws.com" not in topic_doc or "aws_cloudwatch_event_rule.task_failed.arn" not in topic_doc:
        errors.append("alerts.tf: the topic policy must admit events.amazonaws.com from the task_failed rule only")
    # TLS only: both bucket policies and the topic policy carry the shared DenyInsecureTransport.
    for key, src in {
        "lake": resource_attrs("aws_s3_bucket_policy", "lake").get("policy", ""),
        "logs": "".join(_tf_blocks(all_text, r'^data "aws_iam_policy_document" "logs_bucket"')),
        "alerts": topic_doc,
    }.items():
        if f'data.aws_iam_policy_document.tls_only["{key}"].json' not in src:
            errors.append(f"s3.tf/alerts.tf: the {key} policy must include data.aws_iam_policy_document.tls_only[\"{key}\"]")
    kms_doc = _tf_blocks(all_text, r'^data "aws_iam_policy_document" "kms"')[0]
    if "events.amazonaws.com" not in kms_doc:
        errors.append("kms.tf: the key policy must let EventBridge use the key of the alerts topic")
    rendered.append("the alerts pattern against 10 sample events")
    rendered.append("the TLS-only statement in the 3 resource policies")
except (RenderError, KeyError, IndexError, StopIteration, TypeError, ValueError) as e:
    errors.append(f"rendering offline failed: {type(e).__name__}: {e}")

for e in errors:
    print(f"check_hcl: {e}", file=sys.stderr)
if errors:
    sys.exit(1)
print(
    f"check_hcl: {len(files)} .tf files parse; {len(resources)} resources, {len(data)} data sources, "
    f"{len(variables)} variables, {len(locals_)} locals, all references resolve; "
    f"{evaluated} variable validations evaluated"
    + (f" (not evaluated, functions HCL lacks: {', '.join(sorted(set(not_evaluated)))})" if not_evaluated else "")
    + f"; {len(names)} Glue tables match sql/ddl; rendered and checked: {', '.join(rendered)}"
)
