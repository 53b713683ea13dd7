# One image for every Outreach process; compose.yaml runs it as worker, scheduler and web.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY outreach ./outreach
RUN pip install --no-cache-dir . \
    && useradd --system --home-dir /app outreach
# The project's own journeys, templates and channels; mount yours over them.
COPY config ./config
COPY templates ./templates
RUN mkdir -p /app/outbox && chown outreach /app/outbox

ENV OUTREACH_CONFIG_DIR=/app/config \
    OUTREACH_TEMPLATES_DIR=/app/templates \
    OUTREACH_OUTBOX_DIR=/app/outbox \
    PYTHONUNBUFFERED=1
USER outreach
EXPOSE 8000
CMD ["outreach", "--help"]
