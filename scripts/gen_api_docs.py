"""Generate docs/api.md, the REST API reference, from the server's OpenAPI schema.

    .venv/bin/python scripts/gen_api_docs.py          # rewrite docs/api.md
    .venv/bin/python scripts/gen_api_docs.py --check  # exit 1 if docs/api.md is stale (a test runs this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DOC = Path(__file__).parents[1] / "docs" / "api.md"
METHOD_ORDER = ("get", "post", "put", "patch", "delete")


def _schema() -> dict[str, Any]:
    from shipyard.config import Settings
    from shipyard.server import create_app
    from shipyard.server.permissions import ROUTE_PERMISSIONS

    app = create_app(Settings.resolve(env={}, tracking_uri="sqlite:///:memory:"))
    schema = app.openapi()
    schema["x-permissions"] = dict(ROUTE_PERMISSIONS)
    app.state.client.close()
    return schema


def _body_fields(schema: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/octet-stream" in content:
        return ["raw bytes (`application/octet-stream`), streamed"]
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    if not ref:
        return []
    model = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    required = set(model.get("required", []))
    return [f"`{name}`{'' if name in required else ' (optional)'}" for name in model.get("properties", {})]


def render(schema: dict[str, Any]) -> str:
    lines = [
        "# REST API reference",
        "",
        "Generated from the server's OpenAPI schema by `scripts/gen_api_docs.py` (a test fails when",
        "this file is stale). The live schema is served at `/openapi.json` and browsable at `/docs`.",
        "",
        "Every error answers with the HTTP status of its class and the body",
        '`{"error_code": "...", "message": "..."}` (plus `details` where useful); see',
        "[tracking.md](tracking.md#the-command-line) for the codes. Mutating requests must send",
        "`application/json` (uploads: `application/octet-stream`). Non-finite metric values travel",
        'as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.',
        "",
        "The Permission column is what each route declares; [security.md](security.md) says which role",
        "in the object's project grants each one (`read`: viewer, `write`: editor, `maintain`:",
        "maintainer, `delete`: owner; `admin`: server admins; `signed_in`: any signed-in user; `public`:",
        "anyone). On a server started with `--auth`, every request is authenticated (`Authorization:",
        "Bearer shy_…`, Basic auth, or the web UI's session cookie) and acts as that user, who is",
        "recorded as the user of every change; no credentials where some are needed is",
        "`401 UNAUTHENTICATED`, too low a role `403 PERMISSION_DENIED`, and an object in a project the",
        "user has no role in is `404 NOT_FOUND`. Without `--auth` every request is the anonymous `local`",
        "principal, which holds every permission, and every change is recorded under the user `local`:",
        "keep such a server on a trusted network (see [server.md](server.md#security-model)).",
        "",
        "| Method | Path | Operation | Permission | Body |",
        "|---|---|---|---|---|",
    ]
    permissions = schema["x-permissions"]
    for path, item in sorted(schema["paths"].items()):
        for method in METHOD_ORDER:
            if method not in item:
                continue
            op = item[method]
            name = op["operationId"]
            body = ", ".join(_body_fields(schema, op)) or "—"
            lines.append(f"| {method.upper()} | `{path}` | {op.get('summary', name)} (`{name}`) "
                         f"| {permissions.get(name, '**none: refused**')} | {body} |")
    lines += ["", "Also served, outside the schema: `GET /openapi.json` and `GET /docs` (public).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is not up to date")
    args = parser.parse_args(argv)
    text = render(_schema())
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/api.md is stale: run .venv/bin/python scripts/gen_api_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
