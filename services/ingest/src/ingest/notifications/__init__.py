"""User notifications (api.md §4.9, §6 row 13): records, the API and SMTP e-mail.

Pure: `compose` (drafts and texts from events and stored state). Storage: `store` (set-based,
idempotent on (user, kind, subject)), `models` (the table). Orchestration: `service` (from run
events, finished uploads and the onboarding job), `wiring` (bus subscriptions, background loops),
`mailer` (the e-mail outbox) over `smtp` (stdlib smtplib). Routes: `api`; shapes: `schemas`.
"""
