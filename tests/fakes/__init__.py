"""Fake third-party servers (WeChat API, Telegram Bot API) served on 127.0.0.1 for tests."""
