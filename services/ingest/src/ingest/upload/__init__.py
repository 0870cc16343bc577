"""CSV upload (api.md #24, #59, #60): accept a file, check it (`ingest.csv_format`), import it.

Request path: `form` (the multipart form), `accept` (target, upload row and job), `responses`
(status and results bodies). The `upload.process` job: `service`, which imports a clean file
through `commit`. Storage: `store` (upload rows), `report_store` (staged rows and issues),
`check_inputs` (what the check compares against), `book_writes` (portfolio and positions).
Shared with onboarding: `clock`, `bulk`, `errors`, `urls`.
"""
