"""Messaging adapter layer, the channel-free conversation, the app factory, CLI and settings."""
