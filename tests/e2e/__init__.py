"""Browser (end-to-end) tests: the chat widget in Debian Chromium via Playwright."""
