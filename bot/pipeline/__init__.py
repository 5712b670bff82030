"""The message pipeline: the durable outbox of later messages to citizens (`outbox`)."""
