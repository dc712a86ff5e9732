# Test-only (scripts/compose_test.sh): Debian's Python 3.11 on the local debootstrap base,
# the stand-in for python:3.11-slim-bookworm.
FROM local/debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
