"""A local HTTP server answering like the GitHub REST API for one pull request.

Routes on a ``pytest_httpserver.HTTPServer`` (used by tests/test_actions.py and
bench/bench_action.py): the PR, its issue events and reviews, its comments (recorded), check
runs (recorded) and ``GET /user`` refused as it is for the Actions token.
"""

from __future__ import annotations

import json
import re


class GitHubApiRoutes:
    """Routes on a pytest-httpserver, answering like the GitHub REST API for one PR."""

    def __init__(
        self,
        server,
        number: int,
        head: str,
        base: str,
        labels=(),
        label_events=(),
        comments_status: int | None = None,
    ):
        """``comments_status``: answer every comment request with this status (e.g. 502)."""
        self.server = server
        api = server.url_for("").rstrip("/")
        self.api = api
        self.comments: list[dict] = []
        self.commit_lookups: list[str] = []
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
        if comments_status is not None:
            server.expect_request(
                re.compile(rf"^/repos/o/r/issues/({number}/comments|comments/\d+)$")
            ).respond_with_json({"message": "Server Error"}, status=comments_status)
        server.expect_request(
            f"/repos/o/r/issues/{number}/comments", method="GET"
        ).respond_with_handler(lambda request: self._json(self.comments, 200))
        server.expect_request(
            f"/repos/o/r/issues/{number}/comments", method="POST"
        ).respond_with_handler(self._comment)
        server.expect_request(
            re.compile(r"^/repos/o/r/issues/comments/\d+$"), method="PATCH"
        ).respond_with_handler(self._edit)
        # a commit's author: what suggested reviewers are looked up by (every author
        # matches the login of their e-mail's local part)
        server.expect_request(
            re.compile(r"^/repos/o/r/commits/[0-9a-f]{40}$"), method="GET"
        ).respond_with_handler(self._commit)
        server.expect_request("/repos/o/r/check-runs", method="POST").respond_with_json(
            {
                "id": 5,
                "name": "diffrisk",
                "status": "completed",
                "html_url": "https://github.com/o/r/runs/5",
            },
            status=201,
        )

    def _commit(self, request):
        sha = request.path.rsplit("/", 1)[-1]
        self.commit_lookups.append(sha)
        return self._json(
            {
                "sha": sha,
                "commit": {"message": "m", "author": {"name": "a", "email": "a@example.com"}},
                "author": {"login": f"user-{sha[:7]}", "id": 1, "type": "User"},
                "files": [],
            },
            200,
        )

    @staticmethod
    def _json(data, status: int):
        from werkzeug import Response

        return Response(json.dumps(data), status=status, content_type="application/json")

    def _comment(self, request):
        """POST: a new comment by the Actions bot (the identity GITHUB_TOKEN posts as)."""
        cid = len(self.comments) + 1
        c = {
            "id": cid,
            "body": json.loads(request.get_data())["body"],
            "user": {"login": "github-actions[bot]"},
            "url": f"{self.api}/repos/o/r/issues/comments/{cid}",
            "html_url": f"https://github.com/o/r/pull/7#issuecomment-{cid}",
            "created_at": "2024-01-03T00:00:00Z",
        }
        self.comments.append(c)
        return self._json(c, 201)

    def _edit(self, request):
        """PATCH: edit a comment in place."""
        cid = int(request.path.rsplit("/", 1)[1])
        c = next(c for c in self.comments if c["id"] == cid)
        c["body"] = json.loads(request.get_data())["body"]
        return self._json(c, 200)

    def checks(self) -> list[dict]:
        return [
            json.loads(r.get_data())
            for r, _ in self.server.log
            if r.path == "/repos/o/r/check-runs"
        ]
