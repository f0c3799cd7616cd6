"""The daily report from a database: demo_db (the DEMO data and its planted anomalies), source (read-only
access), spec (what to report), facts (every number, computed in code), writer (the prose and its fact check),
output (the four files per date), daily (one day or a range, end to end, and its schedule) and accuracy (the
labelled days that measure it)."""
