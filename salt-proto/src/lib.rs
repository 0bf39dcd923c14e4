//! SaltStack wire payloads and crypto (placeholder).
