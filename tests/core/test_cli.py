import json
import subprocess
import sys

from shoprec import cli


def test_help_lists_every_command(capsys):
    code = cli.main([])
    out = capsys.readouterr().out
    assert code == 2
    for name in cli.COMMANDS:
        assert name in out


def test_schema_command_prints_json(capsys):
    assert cli.main(["schema"]) == 0
    assert "Event" in json.loads(capsys.readouterr().out)["definitions"]


def test_cli_does_not_import_heavy_libraries_for_help():
    code = "import sys; from shoprec import cli; cli.build_parser(); print(sorted(m for m in ('torch','faiss','tantivy','lightgbm') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
