# Engauge in a container: one process, its data in the /data volume, run as a non-root user.
#   docker build -t engauge . && docker run -p 8080:8080 -v engauge-data:/data engauge
FROM python:3.11-slim

RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin engauge \
    && mkdir /data && chown engauge:engauge /data

WORKDIR /app
COPY pyproject.toml README.md package.json package-lock.json ./
COPY scripts ./scripts
COPY engauge ./engauge
# The chart library is fetched from the npm registry and checked against package-lock.json.
RUN python scripts/assets.py && pip install --no-cache-dir . && rm -rf /root/.cache

ENV ENGAUGE_HOST=0.0.0.0 \
    ENGAUGE_PORT=8080 \
    ENGAUGE_BASEPATH=/data \
    PYTHONUNBUFFERED=1
VOLUME /data
USER engauge
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=4)"
STOPSIGNAL SIGTERM
ENTRYPOINT ["engauge"]
CMD ["serve"]
