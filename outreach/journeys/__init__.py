"""From events to planned sends: journeys from config, the durable inbox, ingestion, recurring check-ins."""
