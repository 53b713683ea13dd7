# One image for every Outreach process; compose.yaml runs it as worker, scheduler and web.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY outreach ./outreach
RUN pip install --no-cache-dir . \
    && useradd --system --home-dir /app outreach \
    && rm -rf /app/outreach
# The starter project; mount your own (`outreach init`) over /app/project.
RUN outreach init /app/project \
    && mkdir -p /app/outbox && chown outreach /app/outbox

ENV OUTREACH_PROJECT=/app/project \
    OUTREACH_OUTBOX_DIR=/app/outbox \
    PYTHONUNBUFFERED=1
USER outreach
EXPOSE 8000
CMD ["outreach", "--help"]
