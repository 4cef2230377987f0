"""GitLab: the REST client (python-gitlab), the GitLab CI job's merge request, publishing."""
