"""switchboard rules lint|test, convert and route, with their exit codes:
0 ok, 1 findings or failures, 2 usage or configuration error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from engine.cli import main
from tests.samples import CORPUS

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "engine" / "rules" / "broken_configs"
ORU = str(CORPUS / "fhir-converter" / "ORU-R01-RMGEAD.hl7")


def test_lint_and_test_pass_on_the_shipped_example(capsys):
    assert main(["rules", "lint", str(ROOT)]) == 0
    assert "0 finding(s)" in capsys.readouterr().out
    assert main(["rules", "test", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "FAIL" not in out


def test_lint_warns_of_each_secret_variable_this_process_lacks(capsys, monkeypatch):
    """Issue 14, item 4: a connection whose token variable is unset was found only when
    its deliveries had been retried for ten minutes. Lint names each such variable; it
    is a warning about this process, not a finding about the rules, so the exit is 0."""
    named = {"SWITCHBOARD_EHR_FHIR_TOKEN", "SWITCHBOARD_PORTAL_FHIR_TOKEN",
             "SWITCHBOARD_PARTNER_REFERRALS_TOKEN", "SWITCHBOARD_REFERRAL_TOKEN",
             "SWITCHBOARD_OUTREACH_TOKEN", "SWITCHBOARD_CLINIC_NORTH_TOKEN",
             "SWITCHBOARD_CLINIC_SOUTH_TOKEN"}
    for variable in named:
        monkeypatch.setenv(variable, "set")
    monkeypatch.delenv("SWITCHBOARD_EHR_FHIR_TOKEN")
    assert main(["rules", "lint", str(ROOT)]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    # Both connections to the EHR present its token.
    assert warnings == [
        f"warning: catalog/connections/{name}.yaml: endpoint.auth_secret_env: connection "
        f"'{name}' names SWITCHBOARD_EHR_FHIR_TOKEN for its Authorization header, and this "
        "process does not have it set" for name in ("ehr-fhir", "ehr-referral-status")]
    assert "0 finding(s)" in out
    monkeypatch.setenv("SWITCHBOARD_EHR_FHIR_TOKEN", "set")
    assert main(["rules", "lint", str(ROOT)]) == 0
    assert "warning:" not in capsys.readouterr().out


def test_lint_findings_exit_1(capsys):
    assert main(["rules", "lint", str(BROKEN / "unknown-destination")]) == 1
    assert "connection 'lab-archive' is not in the catalog" in capsys.readouterr().out


def test_a_folder_without_configuration_exits_2(tmp_path, capsys):
    assert main(["rules", "lint", str(tmp_path)]) == 2
    assert "holds neither rules/ nor catalog/" in capsys.readouterr().err


def test_test_on_a_broken_configuration_exits_2_naming_the_problem(capsys):
    assert main(["rules", "test", str(BROKEN / "schema")]) == 2
    assert "rules/routes/labs.yaml: rows[0].when.op" in capsys.readouterr().err


def test_convert_prints_one_json_object_per_message(capsys):
    sample = str(CORPUS / "python-hl7" / "sample_oru.hl7")
    assert main(["convert", "--to", "canonical", ORU, sample, "--config", str(ROOT)]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["message"]["control_id"] for r in records] == ["CNTRL-3456", "CNTRL-3456"]
    assert "PID-7 -> patient.birth_date: not a valid HL7 date/time" in captured.err


def test_convert_to_fhir_prints_one_bundle_or_one_per_line(capsys):
    adt = str(CORPUS / "fhir-converter" / "ADT-A01-01.hl7")
    assert main(["convert", "--to", "fhir", adt, "--config", str(ROOT)]) == 0
    single = capsys.readouterr().out
    assert single.startswith("{\n")  # one indented document
    bundle = json.loads(single)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    kinds = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
    assert {"Patient", "Encounter", "MessageHeader", "Provenance"} <= kinds
    assert main(["convert", "--to", "fhir", adt, ORU, "--config", str(ROOT)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == bundle  # the same message, the same ids
    assert json.loads(lines[1])["entry"][0]["resource"]["resourceType"] == "Patient"


def test_convert_reads_stdin_and_reports_unparseable_input():
    stdin = (CORPUS / "fhir-converter" / "ADT-A01-01.hl7").read_bytes() + b"\nNOT HL7\n"
    run = subprocess.run(
        [sys.executable, "-m", "engine.cli", "convert", "-", "--config", str(ROOT)],
        input=stdin, capture_output=True, cwd=ROOT, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.decode().splitlines()[0])["message"]["event"] == "A01"
    bad = subprocess.run(
        [sys.executable, "-m", "engine.cli", "convert", "-", "--config", str(ROOT)],
        input=b"PID|1||123\r", capture_output=True, cwd=ROOT, timeout=60,
    )
    assert bad.returncode == 1
    assert b"must start with an MSH segment" in bad.stderr


def test_route_explains_rows_destinations_payloads_and_tasks(capsys):
    assert main(["route", ORU, "--config", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "row results/abnormal-results-held-for-nurse-review fired -> ehr-fhir" in out
    assert "results[*].abnormal_flags[*] any in" in out and "saw ['H'], held" in out
    assert "deliver to ehr-fhir (held until 'abnormal-results-held-for-nurse-review'" in out
    assert "task abnormal-result-review in queue nurse-review (hold" in out
    warehouse = out.split("deliver to analytics-warehouse:")[1].split("deliver to")[0]
    assert "PATRICIA" not in warehouse and "555-44-4444" not in warehouse


def test_route_json(capsys):
    assert main(["route", "--json", ORU, "--config", str(ROOT)]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert {d["destination"] for d in outcome["deliveries"]} == {
        "ehr-fhir", "clinic-north", "analytics-warehouse",
    }
    assert outcome["tasks"][0]["queue"] == "nurse-review"


def test_missing_file_exits_2(capsys):
    assert main(["route", "/nonexistent.hl7", "--config", str(ROOT)]) == 2
    assert "No such file or directory: /nonexistent.hl7" in capsys.readouterr().err


def test_lint_flags_a_recovery_procedure_naming_a_command_that_does_not_exist(
        tmp_path, capsys):
    """Issue 14, item 11: a recovery procedure named `switchboard status` before it
    existed, and nothing noticed."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "catalog", tmp_path / "catalog")
    entry_file = tmp_path / "catalog" / "connections" / "ehr-adt-feed.yaml"
    entry_file.write_text(entry_file.read_text().replace(
        "(`switchboard status`)", "(`switchboard listeners`)"))
    assert main(["rules", "lint", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "catalog/connections/ehr-adt-feed.yaml: recovery_procedure:" in out
    assert "'switchboard listeners' is not a Switchboard command" in out


def test_a_telephone_switchboard_in_a_recovery_procedure_is_not_a_command(tmp_path, capsys):
    """Hospitals have switchboards: only a command written as code (in backticks) is
    checked against Switchboard's commands."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "catalog", tmp_path / "catalog")
    entry_file = tmp_path / "catalog" / "connections" / "bed-board.yaml"
    entry_file.write_text(entry_file.read_text().replace(
        "recovery_procedure: |\n", "recovery_procedure: |\n  0. Ask the switchboard operator "
        "to page the bed managers, from the switchboard rota.\n", 1))
    assert main(["rules", "lint", str(tmp_path)]) == 0, capsys.readouterr().out
