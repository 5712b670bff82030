"""Accessibility helpers of the browser tests: axe-core (shipped by the ``axe-playwright-python``
package) run in a Playwright page, and measurements axe does not make: the font size of every
element that shows text (through open shadow roots, so the widget counts), the focus indicator of
the focused element, and the page's horizontal overflow. Also small screenshots for docs/screenshots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from PIL import Image

from tests.e2e.test_widget import screenshot_path

AXE = Axe()
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")

# Every element with its own visible text, in document order, descending into open shadow roots.
TEXT_SIZES_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) walk(el.shadowRoot);
      const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
      if (!own || !el.getClientRects().length) continue;
      const cs = getComputedStyle(el);
      if (cs.visibility === 'hidden' || cs.display === 'none') continue;
      const r = el.getBoundingClientRect();
      if (r.width <= 1 || r.height <= 1) continue;  // visually hidden (screen-reader) text
      const name = el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
        ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
      out.push([name, parseFloat(cs.fontSize), el.textContent.trim().slice(0, 24)]);
    }
  };
  walk(document);
  return out;
}"""

# The focused element, through shadow roots, and how its focus is drawn.
FOCUS_JS = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  if (!el || el === document.body) return null;
  const cs = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  return {
    name: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ' +
      (el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 30),
    outlineStyle: cs.outlineStyle, outlineWidth: parseFloat(cs.outlineWidth), boxShadow: cs.boxShadow,
    visible: r.width > 0 && r.height > 0 && cs.visibility !== 'hidden',
    inViewport: r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth,
  };
}"""


def axe_violations(page: Any, *, care: bool = False) -> list[str]:
    """The serious and critical WCAG 2.1 A/AA violations on the page, plus in care mode every
    failure of the enhanced (AAA, 7:1) contrast rule; one line each: rule, impact, the first
    elements and axe's summary."""
    runs: list[dict[str, Any]] = [{"type": "tag", "values": WCAG_AA}]
    if care:
        runs.append({"type": "rule", "values": ["color-contrast-enhanced"]})
    found = []
    for run_only in runs:
        results = AXE.run(page, options={"runOnly": run_only, "resultTypes": ["violations"]})
        for v in results.response["violations"]:
            if run_only["type"] == "tag" and v.get("impact") not in BLOCKING:
                continue
            targets = [" ".join(map(str, n["target"])) for n in v["nodes"][:4]]
            summary = v["nodes"][0].get("failureSummary", "").replace("\n", " ")[:300]
            found.append(f"{v['id']} ({v.get('impact')}) x{len(v['nodes'])}: {targets} {summary}")
    return found


def text_sizes(page: Any) -> list[tuple[str, float, str]]:
    return [tuple(row) for row in page.evaluate(TEXT_SIZES_JS)]


def focused(page: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = page.evaluate(FOCUS_JS)
    return result


def focus_is_visible(info: dict[str, Any]) -> bool:
    outline = info["outlineStyle"] != "none" and info["outlineWidth"] >= 2
    return info["visible"] and (outline or info["boxShadow"] not in ("none", ""))


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no sideways scrolling)."""
    width: int = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    return width


def small_screenshot(page: Any, name: str, tmp_path: Path, *, full_page: bool = False) -> Path:
    """docs/screenshots/<name>.png (when missing or POLICYBOT_SCREENSHOTS=1, else under tmp_path),
    reduced to 128 colours so that each stays well under 200 KB."""
    path = screenshot_path(f"screenshots/{name}.png", tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=128)
    small.save(path, optimize=True)
    return path
