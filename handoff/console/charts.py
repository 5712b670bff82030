"""Server-side SVG charts for console pages: stacked columns per day and horizontal bars. Plain
inline SVG (presentation attributes, no style attributes and no script), so the console's CSP
(`default-src 'self'`) allows it, it needs no JavaScript or CDN, scales with the page and prints.
Text is escaped; the browser draws it with the page's CJK font.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from markupsafe import Markup, escape

PALETTE: Final = ("#1f5fbf", "#e07b39", "#2e9e5b", "#8e5bb5", "#c62828", "#6b7280", "#00838f", "#b8860b")


def _nice_max(value: float) -> float:
    """An axis maximum at or above `value` whose four grid steps are round whole numbers."""
    if value <= 4:
        return 4.0
    mag = 1
    while True:
        for step in (1, 2, 3, 4, 5, 10, 15, 20, 25):
            if 4 * step * mag >= value:
                return float(4 * step * mag)
        mag *= 10


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def stacked_columns(
    labels: Sequence[str],
    series: Sequence[str],
    values: Sequence[Sequence[int]],
    *,
    title: str,
    colors: Sequence[str] = PALETTE,
    height: int = 240,
    width: int = 900,
) -> Markup:
    """Columns per label (a day), stacked by series; `values[i][j]` is label i, series j."""
    left, right, top, bottom = 44, 12, 34, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(v) for v in values]
    ymax = _nice_max(max(totals, default=0))
    n = max(len(labels), 1)
    slot = plot_w / n
    bar = max(2.0, slot * 0.7)
    out = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" font-size="13" font-family="inherit">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):  # grid and y axis
        y = top + plot_h - plot_h * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7ee"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#6b7280">{_num(ymax * k / 4)}</text>'
        )
    every = max(1, round(n / 15))  # at most ~15 x labels
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for j, v in enumerate(values[i]):
            if v <= 0:
                continue
            h = plot_h * v / ymax
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colors[j % len(colors)]}"><title>{escape(label)} {escape(series[j])}：{v}</title></rect>'
            )
        if i % every == 0:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'fill="#374151">{escape(label)}</text>'
            )
    # legend
    lx = left
    for j, name in enumerate(series):
        out.append(f'<rect x="{lx}" y="8" width="12" height="12" fill="{colors[j % len(colors)]}"/>')
        out.append(f'<text x="{lx + 16}" y="18" fill="#1f2937">{escape(name)}</text>')
        lx += 28 + 13 * len(name)
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9aa3b2"/>'
    )
    out.append("</svg>")
    return Markup("".join(out))


def horizontal_bars(
    items: Sequence[tuple[str, float, str]],
    *,
    title: str,
    color: str = PALETTE[0],
    width: int = 560,
    row: int = 26,
    label_width: int = 230,
    percent: bool = False,
) -> Markup:
    """One bar per item: (label, value, text shown after the bar). `percent`: values in [0, 1]."""
    height = max(1, len(items)) * row + 8
    plot_w = width - label_width - 90
    vmax = 1.0 if percent else _nice_max(max((v for _, v, _ in items), default=0))
    out = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" font-size="13" font-family="inherit">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value, shown) in enumerate(items):
        y = 4 + i * row
        fits = max(4, int(label_width / 14))
        short = label if len(label) <= fits else label[: fits - 1] + "…"
        w = plot_w * (value / vmax if vmax else 0)
        out.append(
            f'<text x="{label_width - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end" fill="#1f2937">'
            f"{escape(short)}<title>{escape(label)}</title></text>"
        )
        out.append(
            f'<rect x="{label_width}" y="{y + 4}" width="{plot_w}" height="{row - 10}" fill="#eef2f8"/>'
        )
        if w > 0:
            out.append(
                f'<rect x="{label_width}" y="{y + 4}" width="{w:.1f}" height="{row - 10}" fill="{color}"/>'
            )
        out.append(
            f'<text x="{label_width + plot_w + 6}" y="{y + row / 2 + 4:.1f}" fill="#374151">{escape(shown)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


__all__ = ["PALETTE", "horizontal_bars", "stacked_columns"]
