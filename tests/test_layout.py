"""The layout rule of DESIGN.md, kept true: no production Python file (bot/, knowledge/, handoff/)
over 600 lines, no function or method over 100 lines (decorators included). A failure names each
offender so that it can be split into well-named pieces."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "knowledge", "handoff")
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 100


def production_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def long_functions(path: Path, root: Path = ROOT, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """'path:line name (n lines)' for every function in `path` longer than `limit` lines."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            n = (node.end_lineno or node.lineno) - first + 1
            if n > limit:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_the_packages_have_python_files() -> None:
    files = production_files()
    assert len(files) > 50  # the walk sees the packages (a wrong root would pass vacuously)
    assert ROOT / "bot" / "app.py" in files


def test_no_production_file_over_600_lines() -> None:
    too_long = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for p in production_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    ]
    assert not too_long, f"files over {MAX_FILE_LINES} lines: split them: {too_long}"


def test_no_function_over_100_lines() -> None:
    too_long = [entry for p in production_files() for entry in long_functions(p)]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: split them: {too_long}"


def test_the_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample = tmp_path / "probe.py"
    sample.write_text(f"@decorator\ndef big():\n{body}\n\ndef small():\n    return 1\n", encoding="utf-8")
    assert long_functions(sample, tmp_path) == [f"probe.py:2 big ({MAX_FUNCTION_LINES + 2} lines)"]
