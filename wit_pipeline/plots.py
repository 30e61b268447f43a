"""PNG drawings for `wit inspect`, with PIL only (matplotlib is not a dependency).

Both pictures are pure functions of their inputs (fixed sizes, fixed font, no timestamps),
so the same shards give the same PNG bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from wit_pipeline.image.decode import decode_image

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
GRID = (225, 225, 225)
MISSING = (200, 60, 60)
BEFORE = (120, 160, 210)  # blue: matches before balancing
AFTER = (235, 140, 50)  # orange: kept after balancing

THUMB = 160
SHEET_COLUMNS = 6
CAPTION_LINES = 4
FONT_SIZE = 12


def _font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size)


def _text_width(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> float:
    return font.getlength(text)


def _fit(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str, width: float) -> str:
    """`text` cut (with an ellipsis) to fit `width` pixels."""
    if _text_width(font, text) <= width:
        return text
    while text and _text_width(font, text + "…") > width:
        text = text[:-1]
    return text + "…"


def _wrap(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str, width: float, lines: int) -> list[str]:
    """Greedy word wrap to `width` pixels, at most `lines` lines; the last one ends in … if cut."""
    words = " ".join(text.split()).split(" ")
    out: list[str] = []
    line = ""
    i = 0
    while i < len(words) and len(out) < lines:
        trial = f"{line} {words[i]}".strip()
        if _text_width(font, trial) <= width or not line:
            line = _fit(font, trial, width)
            i += 1
        else:
            out.append(line)
            line = ""
    if line and len(out) < lines:
        out.append(line)
    if i < len(words) and out:
        out[-1] = _fit(font, out[-1] + " " + " ".join(words[i:]), width)
    return out


def contact_sheet(
    samples: Sequence[tuple[str, bytes | None, str]],
    columns: int = SHEET_COLUMNS,
    thumb: int = THUMB,
    caption_lines: int = CAPTION_LINES,
) -> Image.Image:
    """A grid of (key, image bytes, caption): each thumbnail with its key and wrapped caption below.

    Images that do not decode (or are over the pixel cap) get a red cross, not an exception:
    a contact sheet is for looking at bad data too.
    """
    font = _font()
    line_h = FONT_SIZE + 3
    pad = 8
    cell_w = thumb + 2 * pad
    cell_h = pad + thumb + 4 + line_h * (1 + caption_lines) + pad
    columns = max(1, min(columns, len(samples) or 1))
    rows = max(1, -(-len(samples) // columns))
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, (key, data, caption) in enumerate(samples):
        x0, y0 = (i % columns) * cell_w + pad, (i // columns) * cell_h + pad
        img, reason = decode_image(data) if data is not None else (None, "missing image")
        draw.rectangle((x0 - 1, y0 - 1, x0 + thumb, y0 + thumb), outline=GRID)
        if img is None:
            draw.line((x0, y0, x0 + thumb - 1, y0 + thumb - 1), fill=MISSING, width=2)
            draw.line((x0, y0 + thumb - 1, x0 + thumb - 1, y0), fill=MISSING, width=2)
            draw.text((x0 + 4, y0 + 4), str(reason), fill=MISSING, font=font)
        else:
            small = img.convert("RGB")
            small.thumbnail((thumb, thumb), Image.Resampling.BICUBIC)
            sheet.paste(small, (x0 + (thumb - small.width) // 2, y0 + (thumb - small.height) // 2))
        y = y0 + thumb + 4
        draw.text((x0, y), _fit(font, key, thumb), fill=(110, 110, 110), font=font)
        for line in _wrap(font, caption, thumb, caption_lines):
            y += line_h
            draw.text((x0, y), line, fill=INK, font=font)
    return sheet


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int], tuple[int, int, int]]],
    width: int = 900,
    row: int | None = None,
    marker: tuple[str, int] | None = None,
) -> Image.Image:
    """Horizontal bars, one row per label (labels stay readable however long), one bar per
    series within a row, each with its value; a legend when there is more than one series;
    `marker` (name, value) draws a vertical line, e.g. the balancing target t."""
    row = row or (22 if len(series) < 2 else 16 * len(series))
    font = _font()
    title_font = _font(16)
    n_series = max(1, len(series))
    label_w = int(min(280, max([_text_width(font, s) for s in labels] + [40]) + 24))
    top = 44 + (20 if len(series) > 1 else 0)
    height = top + max(1, len(labels)) * row + 16
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), title, fill=INK, font=title_font)
    if len(series) > 1:
        x = 10
        for name, _, colour in series:
            draw.rectangle((x, 40, x + 12, 52), fill=colour)
            draw.text((x + 18, 39), name, fill=INK, font=font)
            x += 30 + int(_text_width(font, name))
    vmax = max([v for _, values, _ in series for v in values] + [marker[1] if marker else 0, 1])
    value_w = int(_text_width(font, f"{vmax:,}")) + 10
    bar_x0 = label_w
    bar_w = width - label_w - value_w - 10
    bar_h = max(4, (row - 6) // n_series)
    for i, label in enumerate(labels):
        y = top + i * row
        if i % 2 == 0:
            draw.rectangle((0, y, width, y + row - 1), fill=(246, 246, 246))
        draw.text((label_w - 8 - _text_width(font, _fit(font, label, label_w - 16)), y + (row - FONT_SIZE) // 2 - 1),
                  _fit(font, label, label_w - 16), fill=INK, font=font)
        for j, (_, values, colour) in enumerate(series):
            v = values[i]
            by = y + 3 + j * bar_h
            length = round(bar_w * v / vmax)
            if length > 0:
                draw.rectangle((bar_x0, by, bar_x0 + length, by + bar_h - 2), fill=colour)
            if n_series == 1 or bar_h >= FONT_SIZE - 2:
                draw.text((bar_x0 + length + 4, by + (bar_h - FONT_SIZE) // 2 - 1), f"{v:,}", fill=INK, font=font)
            else:
                small = _font(max(8, bar_h))
                draw.text((bar_x0 + length + 4, by - 1), f"{v:,}", fill=INK, font=small)
    if marker is not None and labels:
        mx = bar_x0 + round(bar_w * marker[1] / vmax)
        for y in range(top, top + len(labels) * row, 6):
            draw.line((mx, y, mx, y + 3), fill=INK)
        draw.text((mx + 3, top - 14), marker[0], fill=INK, font=font)
    if not labels:
        draw.text((label_w, top), "(no queries)", fill=INK, font=font)
    return img


__all__ = ["bar_chart", "contact_sheet"]
