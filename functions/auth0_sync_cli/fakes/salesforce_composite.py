"""The fake Salesforce org's Composite resource, written from the REST API Developer Guide
("Send Multiple Requests Using Composite", https://developer.salesforce.com/docs/platform/
api-rest/guide/resources-composite-composite-post.html): `POST /services/data/vXX.X/
composite` with `{allOrNone, compositeRequest: [{method, url, referenceId, body,
httpHeaders}]}` runs up to 25 subrequests in order, each as its own request would run
(the subrequest's `httpHeaders`, such as `If-Unmodified-Since`, included: "You can also
specify headers for each subrequest"), and answers 200 with `{compositeResponse: [{body,
httpHeaders, httpStatusCode, referenceId}]}` in the same order. "The entire series of
requests counts as a single call toward your API limits." With `allOrNone` false a
failed subrequest stops nothing. The fake serves subrequests on its own sObject routes
only (no references between subrequests, no queries), which is all the adapter sends;
more than 25 subrequests is 400 (the fake's choice of code, as the guide names none).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

SUBREQUEST_LIMIT = 25

# Set while a subrequest runs inside a composite request: the gate has already counted
# and checked the composite request itself.
inside = threading.local()


def in_composite() -> bool:
    return bool(getattr(inside, "on", False))


def add_composite_route(
    app: Flask,
    api: str,
    errors: Callable[..., Response],
    ok: Callable[..., Response],
) -> None:
    """Serve `POST {api}/composite` over the fake's own routes."""

    @app.post(api + "/composite")
    def composite() -> Response:
        body: Any = request.get_json(silent=True)
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not all(isinstance(s, dict) for s in subrequests):
            return errors(400, "JSON_PARSER_ERROR", "compositeRequest must be a list")
        if len(subrequests) > SUBREQUEST_LIMIT:
            return errors(
                400,
                "INVALID_BATCH_REQUEST",
                f"a composite request holds at most {SUBREQUEST_LIMIT} subrequests",
            )
        if body.get("allOrNone"):
            return errors(400, "INVALID_BATCH_REQUEST", "the fake serves allOrNone false only")
        auth = request.headers.get("Authorization", "")
        answers = []
        for sub in subrequests:
            headers = {"Authorization": auth, **dict(sub.get("httpHeaders") or {})}
            url = str(sub.get("url") or "")
            kwargs: dict[str, Any] = {"method": str(sub.get("method") or "GET"), "headers": headers}
            if sub.get("body") is not None:
                kwargs["json"] = sub["body"]
            inside.on = True
            try:
                with app.test_request_context(url, **kwargs):
                    answer = app.full_dispatch_request()
            finally:
                inside.on = False
            answers.append(
                {
                    "body": answer.get_json(silent=True),
                    "httpHeaders": {},
                    "httpStatusCode": answer.status_code,
                    "referenceId": sub.get("referenceId"),
                }
            )
        return ok({"compositeResponse": answers})
