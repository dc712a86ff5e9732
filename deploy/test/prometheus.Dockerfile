# Test-only: Debian's prometheus, the stand-in for prom/prometheus.
FROM local/debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        prometheus wget \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus && chown prometheus /prometheus
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
