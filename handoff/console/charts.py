"""Server-side SVG charts for console and board pages: stacked columns per day, horizontal bars and
fluid stacked share bars (the public statistics, readable on a phone). Plain
inline SVG (presentation attributes, no style attributes and no script), so the console's CSP
(`default-src 'self'`) allows it, it needs no JavaScript or CDN, scales with the page and prints.
Text is escaped; the browser draws it with the page's CJK font.
"""

from __future__ import annotations

import math
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


def label_step(labels: Sequence[str], slot: float, *, font: int = 13, gap: float = 8.0) -> int:
    """Draw every k-th x label, k the smallest step at which the widest label (digits and ASCII
    about 0.62 em, CJK 1 em) plus a gap fits in the space of k columns: labels never overlap, and
    as the SVG scales uniformly, they do not at any screen width either."""
    widest = max((sum(1.0 if ord(ch) > 0x2E7F else 0.62 for ch in label) for label in labels), default=0)
    if slot <= 0:
        return 1
    return max(1, math.ceil((widest * font + gap) / slot))


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
    left, right, top, bottom = 44, 12, 34, 44
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
    every = label_step(labels, slot)
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
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 25}" text-anchor="middle" '
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


def share_bars(
    items: Sequence[tuple[str, Sequence[int], str]],
    series: Sequence[str],
    *,
    title: str,
    summary: str,
    colors: Sequence[str],
    ident: str,
) -> Markup:
    """One bar per item (label, parts, text after the bar), its parts stacked left to right, sized to
    the largest total. Fluid: widths in % of the page and heights in em, so the text keeps the
    page's font size (and the reader's font setting) at any screen width, with the label above its
    bar so that long names never crowd it. `summary` is the text alternative (the SVG's desc)."""
    row, top = 2.9, 2.2
    height = top + max(1, len(items)) * row
    vmax = max((sum(parts) for _, parts, _ in items), default=0) or 1
    out = [
        f'<svg class="chart-fluid" width="100%" height="{height:.1f}em" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg" font-size="0.875rem" '
        'font-family="inherit">',
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(summary)}</desc>',
    ]
    lx = 0.0
    for j, name in enumerate(series):  # legend
        out.append(f'<rect x="{lx:.2f}em" y="0.35em" width="0.9em" height="0.9em" fill="{colors[j]}"/>')
        out.append(f'<text x="{lx + 1.2:.2f}em" y="1.15em" fill="#1f2937">{escape(name)}</text>')
        lx += 1.2 + len(name) + 1.2
    for i, (label, parts, shown) in enumerate(items):
        y = top + i * row
        out.append(f'<text x="0" y="{y + 1.0:.2f}em" fill="#1f2937">{escape(label)}</text>')
        x = 0.0
        for j, v in enumerate(parts):
            if v <= 0:
                continue
            w = 82.0 * v / vmax
            out.append(
                f'<rect x="{x:.2f}%" y="{y + 1.35:.2f}em" width="{w:.2f}%" height="1em" fill="{colors[j]}">'
                f"<title>{escape(label)} {escape(series[j])}：{v}</title></rect>"
            )
            x += w
        out.append(f'<text x="{x + 1.5:.2f}%" y="{y + 2.15:.2f}em" fill="#374151">{escape(shown)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


__all__ = ["PALETTE", "horizontal_bars", "label_step", "share_bars", "stacked_columns"]
