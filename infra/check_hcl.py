"""Offline stand-in for `terraform validate` on infra/ (run by scripts/lint-infra).

terraform is not installable from the package registries this project uses, so this checks what it
can without it, and exits 1 on any failure:

1. every .tf file parses with pygohcl (HashiCorp's Go HCL library, the parser terraform uses) and
   with bc-python-hcl2 (the parser checkov uses: a file it cannot read would be skipped silently);
2. every reference resolves: var.X to a variable block, local.X to a locals entry, data.T.N to a
   data block, T.N (T = aws_*) to a resource block; terraform.tfvars.example sets only declared
   variables;
3. variable validations accept the defaults and a good example and reject a bad one, evaluated
   with HCL's own evaluator (conditions that use a function it lacks, such as length or alltrue,
   are reported as not evaluated);
4. each Glue table in athena_glue.tf has its DDL in sql/ddl, and the column regex athena_glue.tf
   applies to it finds the columns (Python's `re` and Terraform's RE2 agree on this pattern).
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

for tf in files:
    # Strings are scanned too (interpolations); comments are dropped first.
    text = re.sub(r"(?m)^\s*#.*$", "", tf.read_text())
    for name in set(re.findall(r"\bvar\.(\w+)", text)):
        if name not in variables:
            errors.append(f"{tf.name}: var.{name} is not declared")
    for name in set(re.findall(r"\blocal\.(\w+)", text)):
        if name not in locals_:
            errors.append(f"{tf.name}: local.{name} is not defined")
    for ref in set(re.findall(r"\bdata\.(aws_\w+\.\w+)", text)):
        if ref not in data:
            errors.append(f"{tf.name}: data.{ref} is not defined")
    for ref in set(re.findall(r"(?<![\w.\"])(aws_\w+\.\w+)", text)):
        if ref not in resources:
            errors.append(f"{tf.name}: {ref} is not a resource")

for example in sorted(infra.glob("*.tfvars.example")):
    try:
        for name in pygohcl.loads(example.read_text()):
            if name not in variables:
                errors.append(f"{example.name}: sets undeclared variable {name}")
    except Exception as e:
        errors.append(f"{example.name}: HCL parse error (pygohcl): {e}")

# --- 3. variable validations -------------------------------------------------------------------------
# variable: (values that must pass, values that must fail), as HCL literals.
cases = {
    "region": (['"eu-west-1"', '"us-gov-west-1"'], ['"EU"', '"us-east"']),
    "name_prefix": (['"repurchase"'], ['"Repurchase"', '"r"', '"x-"']),
    "data_prefix": (['"prod"', '"env/prod"'], ['""', '"/prod"', '"prod/"', '"a b"']),
    "vpc_id": (['"vpc-0123456789abcdef0"'], ['"vpc-xyz"', '"subnet-01234567"']),
    "image_tag": (['"3f2a9c1d0b7e"', '"v1.2.3"'], ['"latest"', '"-x"', '"a:b"']),
    "log_group_name": (['"/ecs/repurchase"'], ['""', '"a b"']),
    "log_retention_days": (["365"], ["100"]),
    "staging_expiration_days": (["14"], ["0"]),
    "scores_expiration_days": (["400"], ["60"]),
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
    good, bad = cases.get(name, ([], []))
    if "default" in spec and spec["default"] is not None:
        good = good + [json.dumps(spec["default"])]
    for v in validations:
        if name in CANNOT_EVALUATE:
            not_evaluated.append(name)
            continue

        def check(value):
            pygohcl.eval_var_condition(v["condition"], v["error_message"], name, value)

        try:
            for value in good:
                try:
                    check(value)
                except pygohcl.UnknownFunctionError:
                    raise
                except pygohcl.ValidationError as e:
                    errors.append(f"variable {name}: rejects good value {value}: {e}")
            for value in bad:
                try:
                    check(value)
                    errors.append(f"variable {name}: accepts bad value {value}")
                except pygohcl.UnknownFunctionError:
                    raise
                except pygohcl.ValidationError:
                    pass
            evaluated += 1
        except pygohcl.UnknownFunctionError:
            not_evaluated.append(name)

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

for e in errors:
    print(f"check_hcl: {e}", file=sys.stderr)
if errors:
    sys.exit(1)
print(
    f"check_hcl: {len(files)} .tf files parse; {len(resources)} resources, {len(data)} data sources, "
    f"{len(variables)} variables, {len(locals_)} locals, all references resolve; "
    f"{evaluated} variable validations evaluated"
    + (f" (not evaluated, functions HCL lacks: {', '.join(sorted(set(not_evaluated)))})" if not_evaluated else "")
    + f"; {len(names)} Glue tables match sql/ddl"
)
