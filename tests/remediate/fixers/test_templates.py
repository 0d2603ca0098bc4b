"""The documents the fixers write from templates, through `readiness remediate --apply`."""

from __future__ import annotations

from pathlib import Path

from ...services.apps import write_app
from ...services.cli import local_inventory, run_cli

PROMETHEUS_PASSWORD = "Prom-Scraper-Pw-7731"
DUMP_PASSWORD = "Pg-Dump-Pw-9924"


def test_no_credential_of_the_profile_is_written_into_a_document_on_the_host(
    tmp_path: Path,
) -> None:
    """The profile's prometheus_url carries the audit's scraper password (as the monitoring
    check tells users to put it) and backup_command a PGPASSWORD. The dry run masked both,
    but --apply wrote them into the incident-response and backup runbooks on the host,
    0644, readable by every local user there. Now the documents hold them masked too."""
    root = write_app(tmp_path / "app")
    inv = local_inventory(
        tmp_path / "inventory.yml",
        root,
        prometheus_url=f"http://scraper:{PROMETHEUS_PASSWORD}@127.0.0.1:9",
        grafana_url=f"http://admin:{PROMETHEUS_PASSWORD}@127.0.0.1:9",
        backup_command=f"PGPASSWORD={DUMP_PASSWORD} pg_dump -h db app",
        backup_cron_files=["cron/app"],  # never a crontab of this machine
    )
    res = run_cli(
        "remediate", "-i", str(inv), "-c", "documentation", "-c", "backup_restore", "--apply",
        "--audit-log", str(tmp_path / "audit.jsonl"),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    runbooks = root / "docs" / "runbooks"
    incident = (runbooks / "incident-response.md").read_text()
    assert "Alerts come from Prometheus (http://scraper:***@127.0.0.1:9)" in incident, incident
    assert (
        "- Command: `PGPASSWORD=*** pg_dump -h db app`"
        in (runbooks / "backup-restore.md").read_text()
    )
    for path in root.rglob("*"):
        if path.is_file() and "cron" not in path.parts:  # the schedule runs the command itself
            text = path.read_text(errors="replace")
            assert PROMETHEUS_PASSWORD not in text and DUMP_PASSWORD not in text, path
