"""kafka-bootstrap(8) says what the built tool does: every configuration key with its default,
every command, option and exit code; and groff reads it without a warning."""
import os
import re

from deploytools import KB_BINARY, SOURCE_DIR, config_keys, run

MANPAGE = SOURCE_DIR / "dist" / "kafka-bootstrap.8"


def source():
    return MANPAGE.read_text()


def unescape(text):
    return text.replace("\\-", "-").replace("\\(mu", "*")


def section(name):
    text = source()
    start = text.index(f"\n.SH {name}\n")
    end = text.find("\n.SH ", start + 1)
    return text[start:end]


def help_text():
    return run([KB_BINARY, "--help"]).stdout


def test_groff_reads_the_page_without_warnings():
    proc = run(["groff", "-man", "-ww", "-z", "-Tutf8", MANPAGE], env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert proc.stderr == ""


def test_every_key_is_documented_with_its_default():
    documented = {}
    for m in re.finditer(r'^\.BR (\w+) " \(([^)]*)\)"$', section("CONFIGURATION"), re.M):
        default = unescape(m.group(2))
        documented[m.group(1)] = "" if default.startswith("default empty") else default
    assert documented == config_keys()


def test_every_command_and_option_is_documented():
    commands = re.findall(r"^  (\w+) ", help_text().split("Commands:")[1].split("Options:")[0], re.M)
    assert commands
    documented = re.findall(r"^\.TP\n\.B (\w+)$", section("COMMANDS"), re.M)
    assert documented == commands
    options = set(re.findall(r"(--[a-z-]+)", help_text().split("Options:")[1].split("Exit codes")[0]))
    assert options
    assert options <= set(re.findall(r"(--[a-z-]+)", unescape(section("OPTIONS"))))


def test_every_exit_code_is_documented():
    in_help = {int(n) for n in re.findall(r"(\d+) [a-zA-Z]", help_text().split("Exit codes:")[1])}
    documented = {int(n) for n in re.findall(r"^\.TP\n\.B (\d+)$", section("EXIT STATUS"), re.M)}
    assert in_help == documented
    assert {0, 10, 11, 12, 13, 14, 64, 69, 70, 75, 77, 78} == documented
