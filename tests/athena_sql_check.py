"""Parses the project's Athena SQL with sqlglot and reports what it found, one JSON line per file.

Run by tests/integration/athena.rs with the test venv's Python (sqlglot pinned in
tests/requirements.txt). Arguments are `DIALECT:PATH` pairs:

  trino:PATH    one SELECT (sql/extract): must parse with read="trino" into a query, not a
                fallback Command; reports the selected column names and the `?` count.
  athena:PATH   one CREATE EXTERNAL TABLE (sql/ddl): Hive-style DDL, which is Athena's DDL
                dialect, parsed with read="athena"; reports columns and types, partition columns,
                LOCATION and TBLPROPERTIES.
  unload:PATH   one generated `UNLOAD (<select>) TO '<s3 folder>' WITH (...)`. sqlglot only knows
                UNLOAD as an opaque Command, so the statement is split here and its SELECT parsed
                with read="trino".

Exit status 1 when any file fails; each failing line names the file and sqlglot's error.
"""

import json
import re
import sys

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

UNLOAD = re.compile(
    r"^UNLOAD \((?P<select>.*)\)\s*TO '(?P<location>s3://[^']+/)'\s*WITH \((?P<props>[^()]*)\)$",
    re.DOTALL,
)


def parse_one(sql, dialect):
    statements = [
        s for s in sqlglot.parse(sql, read=dialect, error_level=ErrorLevel.RAISE) if s is not None
    ]
    if len(statements) != 1:
        raise ValueError(f"expected one statement, found {len(statements)}")
    statement = statements[0]
    # sqlglot falls back to an unparsed Command for syntax it does not know: that proves nothing.
    if isinstance(statement, exp.Command):
        raise ValueError(f"not parsed as SQL (sqlglot fell back to a Command: {statement.this})")
    return statement


def check_select(sql, dialect="trino"):
    query = parse_one(sql, dialect)
    if not isinstance(query, exp.Select):
        raise ValueError(f"expected a SELECT, found {type(query).__name__}")
    tables = [t.name for t in query.find_all(exp.Table)]
    return {
        "kind": "select",
        "columns": [e.alias_or_name for e in query.expressions],
        "tables": tables,
        "placeholders": len(list(query.find_all(exp.Placeholder))),
    }


def check_ddl(sql):
    create = parse_one(sql, "athena")
    if not isinstance(create, exp.Create) or create.args.get("kind") != "TABLE":
        raise ValueError(f"expected CREATE TABLE, found {type(create).__name__}")
    schema = create.this
    if not isinstance(schema, exp.Schema):
        raise ValueError("CREATE TABLE without a column list")
    columns = [
        [c.name, c.args["kind"].sql("hive").upper()]
        for c in schema.expressions
        if isinstance(c, exp.ColumnDef)
    ]
    props = create.args.get("properties")
    partitions, location, tblprops, external, stored_as = [], None, {}, False, None
    for p in props.expressions if props else []:
        if isinstance(p, exp.PartitionedByProperty):
            partitions = [
                [c.name, c.args["kind"].sql("hive").upper()]
                for c in p.this.expressions
                if isinstance(c, exp.ColumnDef)
            ]
        elif isinstance(p, exp.LocationProperty):
            location = p.this.name
        elif isinstance(p, exp.ExternalProperty):
            external = True
        elif isinstance(p, exp.FileFormatProperty):
            stored_as = p.this.name.upper()
        elif isinstance(p, exp.Property):
            tblprops[p.name] = p.args["value"].name
    return {
        "kind": "create_table",
        "table": create.this.this.name,
        "external": external,
        "stored_as": stored_as,
        "columns": columns,
        "partitions": partitions,
        "location": location,
        "tblproperties": tblprops,
    }


def check_unload(sql):
    m = UNLOAD.match(sql.strip())
    if not m:
        raise ValueError("not of the form UNLOAD (<select>) TO 's3://…/' WITH (…)")
    result = check_select(m.group("select"))
    props = dict(
        (k.strip(), v.strip().strip("'"))
        for k, v in (p.split("=", 1) for p in m.group("props").split(","))
    )
    result.update(kind="unload", location=m.group("location"), properties=props)
    return result


def main(args):
    failed = False
    for arg in args:
        dialect, _, path = arg.partition(":")
        out = {"file": path, "dialect": dialect}
        try:
            with open(path, encoding="utf-8") as f:
                sql = f.read()
            if dialect == "trino":
                out.update(check_select(sql))
            elif dialect == "athena":
                out.update(check_ddl(sql))
            elif dialect == "unload":
                out.update(check_unload(sql))
            else:
                raise ValueError(f"unknown check {dialect!r}")
            out["ok"] = True
        except Exception as e:  # report every file, then fail
            failed = True
            # sqlglot underlines the offending token with terminal escapes: drop them.
            message = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(e).__name__}: {e}")
            out.update(ok=False, error=message)
        print(json.dumps(out), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
