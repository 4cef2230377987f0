# diffrisk as a container: `docker run --rm -v "$PWD:/repo" -w /repo IMAGE mine --repo .`
# Also usable as a Docker container action (see docs/actions.md).
FROM python:3.12-slim

# git is needed at run time (diffrisk reads history with git); nothing else.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.* \
    && rm -rf /var/lib/apt/lists/*

# PYTHONSAFEPATH: never import from the working directory (a checkout's own modules).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONSAFEPATH=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/diffrisk
COPY pyproject.toml README.md ./
COPY src ./src
# uid 1001 is the `runner` user of GitHub-hosted runners, so a mounted workspace is ours.
RUN pip install --no-cache-dir . \
    && groupadd --gid 1001 diffrisk \
    && useradd --create-home --uid 1001 --gid 1001 --shell /usr/sbin/nologin diffrisk

USER 1001:1001
# Actions sets HOME=/github/home in containers: point git at this user's config explicitly.
ENV GIT_CONFIG_GLOBAL=/home/diffrisk/.gitconfig
# A mounted workspace may belong to another uid: let git read the two documented mount
# points (never '*': any repository on the machine, a hostile one's hooks and config too).
RUN git config --global --add safe.directory /github/workspace \
    && git config --global --add safe.directory /repo

WORKDIR /github/workspace
ENTRYPOINT ["diffrisk"]
CMD ["--help"]
