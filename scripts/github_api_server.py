"""A local HTTP server answering like the GitHub REST API for one pull request.

Routes on a ``pytest_httpserver.HTTPServer`` (used by tests/test_actions.py and
bench/bench_action.py): the PR, its issue events and reviews, its comments (recorded), check
runs (recorded) and ``GET /user`` refused as it is for the Actions token.
"""

from __future__ import annotations

import json


class GitHubApiRoutes:
    """Routes on a pytest-httpserver, answering like the GitHub REST API for one PR."""

    def __init__(self, server, number: int, head: str, base: str, labels=(), label_events=()):
        self.server = server
        api = server.url_for("").rstrip("/")
        self.api = api
        self.comments: list[dict] = []
        server.expect_request("/user").respond_with_json(
            {"message": "Resource not accessible by integration"}, status=403
        )
        server.expect_request(f"/repos/o/r/pulls/{number}").respond_with_json(
            {
                "number": number,
                "url": f"{api}/repos/o/r/pulls/{number}",
                "issue_url": f"{api}/repos/o/r/issues/{number}",
                "state": "open",
                "labels": [{"name": n, "color": "fff"} for n in labels],
                "head": {"sha": head},
                "base": {"sha": base},
            }
        )
        server.expect_request(f"/repos/o/r/issues/{number}/events").respond_with_json(
            [
                {
                    "id": i,
                    "event": "labeled",
                    "actor": {"login": who},
                    "label": {"name": lb, "color": "fff"},
                    "created_at": "2024-01-02T00:00:00Z",
                }
                for i, (lb, who) in enumerate(label_events, 1)
            ]
        )
        server.expect_request(f"/repos/o/r/pulls/{number}/reviews").respond_with_json([])
        server.expect_request(
            f"/repos/o/r/issues/{number}/comments", method="GET"
        ).respond_with_json([])
        server.expect_request(
            f"/repos/o/r/issues/{number}/comments", method="POST"
        ).respond_with_handler(self._comment)
        server.expect_request("/repos/o/r/check-runs", method="POST").respond_with_json(
            {
                "id": 5,
                "name": "diffrisk",
                "status": "completed",
                "html_url": "https://github.com/o/r/runs/5",
            },
            status=201,
        )

    def _comment(self, request):
        from werkzeug import Response

        body = json.loads(request.get_data())["body"]
        c = {
            "id": len(self.comments) + 1,
            "body": body,
            "user": {"login": "github-actions[bot]"},
            "html_url": "https://github.com/o/r/pull/7#c",
            "created_at": "2024-01-03T00:00:00Z",
        }
        self.comments.append(c)
        return Response(json.dumps(c), status=201, content_type="application/json")

    def checks(self) -> list[dict]:
        return [
            json.loads(r.get_data())
            for r, _ in self.server.log
            if r.path == "/repos/o/r/check-runs"
        ]
