"""The durable schedule: the send record, and every change of its state as one atomic script."""
