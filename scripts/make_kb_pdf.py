"""Generate the sample PDF of the knowledge base: "A handbook of vector search".

The text of the handbook lives in this script, so ``knowledge_base/`` holds only documents to
ingest. The PDF is written by a small hand-made PDF 1.4 writer with no third-party dependency:
the standard Helvetica and Helvetica-Bold Type1 fonts with WinAnsiEncoding, text wrapped to the
page width using the fonts' metrics, one uncompressed content stream per page, and a proper
cross-reference table and trailer. The output is deterministic (no dates, no random ids), so
running the script again produces the same bytes.

Each page covers one topic and holds at least one distinctive fact, so that tests can ask a
question whose answer is on a known page:

    1. Vector databases and Chroma (collections, metadata filters, persistence)
    2. HNSW parameters: M, ef_construction and ef_search
    3. Distance metrics in practice
    4. Quantisation: int8, binary and product quantisation
    5. Scaling out: client/server, sharding and replication

Usage:
    python scripts/make_kb_pdf.py [OUT]

OUT defaults to knowledge_base/vector-search-handbook.pdf (relative to the repository root).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "knowledge_base" / "vector-search-handbook.pdf"

DOC_TITLE = "A handbook of vector search"
DOC_SUBTITLE = "Vector databases, HNSW tuning, distance metrics, quantisation and scaling out"

# Layout, in PDF points (1/72 inch), for an A4 page.
PAGE_WIDTH = 595
PAGE_HEIGHT = 842
MARGIN_X = 64
MARGIN_TOP = 64
MARGIN_BOTTOM = 72
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X
FOOTER_Y = 40

BODY_SIZE = 10.5
BODY_LEADING = 14.5
SUBHEAD_SIZE = 12.5
HEADING_SIZE = 17.0
TITLE_SIZE = 24.0
FOOTER_SIZE = 8.5
PARAGRAPH_GAP = 5.0
BULLET_INDENT = 14.0

HEADING_RGB = (0.09, 0.20, 0.42)
FOOTER_GRAY = 0.45

# ---------------------------------------------------------------------------------------------
# Font metrics (Adobe Core 14 AFM), in 1/1000 em, for character codes 32..126 and a few
# WinAnsi extras. Only characters listed here may appear in the text.
# ---------------------------------------------------------------------------------------------

_ASCII = "".join(chr(code) for code in range(32, 127))

_HELVETICA_ASCII = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
)  # fmt: skip

_HELVETICA_BOLD_ASCII = (
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
)  # fmt: skip

_HELVETICA_EXTRA = {
    "\u2013": 556,  # en dash
    "\u2014": 1000,  # em dash
    "\u2018": 222,  # left single quotation mark
    "\u2019": 222,  # right single quotation mark
    "\u201c": 333,  # left double quotation mark
    "\u201d": 333,  # right double quotation mark
    "\u2022": 350,  # bullet
    "\u00d7": 584,  # multiplication sign
    "\u00e9": 556,  # e acute
}

_HELVETICA_BOLD_EXTRA = {
    "\u2013": 556,
    "\u2014": 1000,
    "\u2018": 278,
    "\u2019": 278,
    "\u201c": 500,
    "\u201d": 500,
    "\u2022": 350,
    "\u00d7": 584,
    "\u00e9": 556,
}


@dataclass(frozen=True)
class Font:
    """A standard Type1 font: its resource name on the page, base font and glyph widths."""

    resource: str
    base_font: str
    widths: dict[str, int]

    def width(self, text: str, size: float) -> float:
        """Return the width of ``text`` set in this font at ``size`` points."""
        try:
            units = sum(self.widths[char] for char in text)
        except KeyError as exc:
            raise ValueError(
                f"character {exc.args[0]!r} has no glyph width in {self.base_font}"
            ) from exc
        return units * size / 1000


REGULAR = Font(
    "F1", "Helvetica", dict(zip(_ASCII, _HELVETICA_ASCII, strict=True)) | _HELVETICA_EXTRA
)
BOLD = Font(
    "F2",
    "Helvetica-Bold",
    dict(zip(_ASCII, _HELVETICA_BOLD_ASCII, strict=True)) | _HELVETICA_BOLD_EXTRA,
)
FONTS = (REGULAR, BOLD)

# ---------------------------------------------------------------------------------------------
# The handbook. Each page is a heading and a body; blocks in the body are separated by blank
# lines. A block starting with "## " is a subheading, one starting with "- " a bullet item, and
# anything else a paragraph. Line breaks inside a block are just spaces. To keep the source
# ASCII, " * " is typeset as a multiplication sign and " -- " as an en dash (used as a minus).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of the handbook: its heading and its body text."""

    heading: str
    body: str


PAGES: tuple[Page, ...] = (
    Page(
        "1. Vector databases and Chroma",
        """
        A vector database stores embeddings together with the text they were computed from and
        arbitrary metadata, and answers nearest-neighbour queries over them. Unlike a plain array
        of vectors in memory, it keeps its index up to date as records are added, updated and
        deleted, persists everything to disk, and combines similarity search with ordinary
        filtering. Chroma is an open-source vector database that runs either embedded inside a
        Python process or as a separate server. This handbook uses Chroma for its examples.

        ## Collections

        Data in Chroma lives in collections. A collection has a unique name, an optional
        embedding function, a configuration for its vector index and its own metadata. Each
        record in a collection has a string id, an embedding, an optional document (the original
        text) and an optional metadata dictionary whose values are strings, numbers or booleans.
        Records are written with add or upsert, which take parallel lists of ids, embeddings,
        documents and metadatas. Upsert replaces records whose ids already exist, which makes
        re-ingesting a changed file idempotent when chunk ids are derived from the file and the
        chunk position. All embeddings in one collection must have the same dimension and must
        come from the same embedding model.

        ## Metadata filters

        A query takes one or more query embeddings and n_results, the number of neighbours to
        return, and can be narrowed with two kinds of filter. The where argument filters on
        metadata with the operators $eq, $ne, $gt, $gte, $lt, $lte, $in and $nin, which can be
        combined with $and and $or. For example, where={"source": {"$in": ["guide.md",
        "faq.md"]}} restricts a search to two files, and where={"page": {"$gte": 3}} skips the
        first two pages of every PDF. The where_document argument filters on the stored text
        itself, for example {"$contains": "HNSW"}. The results are the nearest neighbours among
        the records that pass the filters. The same where syntax works with get and delete, so
        every chunk of a removed file can be deleted with where={"source": "old.pdf"}.

        ## Persistence

        chromadb.PersistentClient(path="./data") keeps everything under the given folder. A
        SQLite database file named chroma.sqlite3 holds the records, their metadata and the
        collection definitions, and the HNSW index of each collection is stored as binary files
        in a sub-folder named after a UUID. Data survives restarts without any explicit save
        step. chromadb.EphemeralClient keeps everything in memory, which is handy for tests.
        Only one process should write to a persistent folder at a time; when several processes
        need the same data, run Chroma as a server instead (see page 5).
        """,
    ),
    Page(
        "2. HNSW parameters: M, ef_construction and ef_search",
        """
        HNSW (Hierarchical Navigable Small World) builds a layered proximity graph over the
        vectors: sparse upper layers for long jumps, and a bottom layer that contains every
        vector. Three parameters decide the balance between memory, build time, query latency
        and recall. Two of them are fixed when the index is built; the third can be changed at
        any moment.

        ## M (max_neighbors in Chroma)

        M is the maximum number of links each node keeps to its neighbours on each layer; on the
        bottom layer the limit is usually 2 * M. Typical values range from 8 to 64, and 16 is a
        common default, including Chroma's max_neighbors. A higher M gives a better-connected
        graph and higher recall, especially for high-dimensional embeddings, at the cost of
        memory and slower inserts: each link is a 4-byte id, so with M = 16 the bottom layer
        alone adds about 2 * 16 * 4 = 128 bytes per vector. M cannot be changed without
        rebuilding the index.

        ## ef_construction

        ef_construction is the size of the candidate list used while a vector is inserted: the
        algorithm explores that many candidates to choose the M best neighbours to link to.
        Larger values, from 100 up to about 500, build a higher-quality graph that can reach a
        higher recall at query time, but make indexing slower. It has no effect on query speed
        afterwards. Chroma's default is 100, and like M it is fixed once the index is built.

        ## ef_search

        ef_search (called ef in the hnswlib library) is the size of the dynamic candidate list
        kept during a query. The search holds the ef_search best candidates found so far and
        stops when no neighbour of any of them can improve the list. It is the main query-time
        knob: raising ef_search increases recall and also latency, roughly in proportion;
        lowering it makes queries faster but misses more of the true nearest neighbours.
        ef_search must be at least k, the number of results requested, and hnswlib silently
        uses the larger of ef and k. Unlike M and ef_construction, ef_search can be changed at
        any time without rebuilding the index; in Chroma the default is 100, and it can be
        raised with collection.modify(configuration={"hnsw": {"ef_search": 200}}).

        ## A tuning recipe

        Build the index with a generous M and ef_construction. Take a few hundred sample
        queries, compute their exact top-k neighbours by brute force, and measure recall@k of
        the index against them. Then increase ef_search step by step until recall reaches the
        target, for example 0.95, and check that latency is still acceptable. If recall levels
        off below the target even with a large ef_search, the graph itself is the limit: rebuild
        it with a larger M or ef_construction.
        """,
    ),
    Page(
        "3. Distance metrics in practice",
        """
        Chroma offers three distance functions, chosen per collection when it is created with
        the space setting: "l2", "cosine" or "ip". The space cannot be changed afterwards; to use
        another metric, create a new collection and add the embeddings again. In every space
        Chroma returns distances, not similarities, so a smaller number always means a closer
        match.

        - l2, the default, is the squared Euclidean distance: the sum of the squared differences,
        without taking the square root. It is 0 for identical vectors and has no upper bound.

        - cosine is 1 minus the cosine similarity. It ranges from 0 (same direction) through 1
        (orthogonal) to 2 (opposite directions) and ignores the lengths of the vectors.

        - ip, inner product, is 1 minus the dot product. For vectors that are not normalised it
        can be negative, and longer vectors tend to win.

        ## Normalised vectors make the metrics agree

        Most sentence-embedding models, including all-MiniLM-L6-v2, are meant to be compared
        with cosine similarity, and many return vectors normalised to unit length. For unit
        vectors the squared Euclidean distance equals 2 -- 2 * cosine similarity, so the l2
        distance is exactly twice the cosine distance: a cosine distance of 0.3 (a cosine
        similarity of 0.7) is an l2 distance of 0.6. The inner-product distance equals the
        cosine distance. All three metrics therefore rank the neighbours in the same order, but
        they report different numbers.

        ## Thresholds depend on the metric

        The difference matters as soon as an application uses a relevance threshold, for
        example to decide that nothing relevant was found. A cut-off of 0.5 tuned on a cosine
        collection is far stricter on an l2 collection holding the same unit vectors, where the
        equivalent cut-off is 1.0. Always record which space a collection uses, and express
        thresholds in that space. To show a similarity score to users, convert back: cosine
        similarity is 1 -- d for the cosine space and 1 -- d / 2 for the l2 space with unit
        vectors.

        ## Practical advice

        Use the metric named on the model card. If vectors are not normalised and the model
        expects cosine, either choose the cosine space or normalise the vectors before adding
        them. Never mix embeddings from different models in one collection: the numbers would
        be comparable in form only, and every distance between them would be meaningless.
        """,
    ),
    Page(
        "4. Quantisation: int8, binary and product quantisation",
        """
        An embedding stored as 32-bit floats takes 4 bytes per dimension. A 384-dimensional
        vector therefore needs 1,536 bytes, and one million of them need about 1.5 GB before any
        index overhead; with a 1,024-dimensional model the same million takes about 4 GB.
        Because an HNSW index is searched in memory, this raw size often decides how large a
        single machine's collection can grow. Quantisation stores compact codes instead of
        full-precision floats, trading a little accuracy for a large saving in memory and a
        faster distance computation.

        ## Scalar quantisation to int8

        Scalar quantisation maps each dimension separately onto 256 levels, using a minimum and
        maximum learned from the data, and stores one byte per dimension. The 384-dimensional
        vector shrinks from 1,536 to 384 bytes, a factor of 4, and distances can be computed
        with fast integer instructions. Because embedding values are spread over a narrow range,
        the loss of recall is usually small, often around one percentage point.

        ## Binary quantisation

        Binary quantisation keeps only the sign of each dimension, one bit, which is 32 times
        smaller than float32: a 384-dimensional vector fits in 48 bytes. Distances become
        Hamming distances, counted with a single processor instruction per 64 bits. The loss is
        larger than with int8, so binary codes are almost always combined with rescoring.

        ## Product quantisation

        Product quantisation (PQ), introduced by Jégou, Douze and Schmid in 2011, splits each
        vector into m sub-vectors. For every sub-space, k-means learns a codebook of 256
        centroids, and each sub-vector is replaced by the one-byte number of its nearest
        centroid. With m = 48, a 384-dimensional vector is cut into 48 pieces of 8 dimensions
        and stored in 48 bytes instead of 1,536, a 32-fold compression. At query time the
        query stays in full precision: a table of the distances from each query sub-vector to
        all 256 centroids of its sub-space (m * 256 entries) is computed once, and the distance
        to any stored vector is then the sum of m table look-ups. PQ needs a training step on a
        representative sample, and it is often combined with an IVF index, as in FAISS's
        IVF-PQ.

        ## Rescoring

        A common pattern keeps the compact codes in memory and the full-precision vectors on
        disk. The search first retrieves several times more candidates than needed, for example
        4 * k, using the compressed codes, then re-ranks those candidates with their exact
        vectors. This recovers most of the recall lost to quantisation at a small extra cost.
        Libraries such as FAISS and databases such as Qdrant and Milvus offer these methods.
        """,
    ),
    Page(
        "5. Scaling out: client/server, sharding and replication",
        """
        The simplest deployment is embedded: the vector database runs inside the application's
        own process and reads and writes a local folder. There is no network hop and nothing to
        operate, but only that process can safely use the data, and the collection must fit in
        the memory of one machine.

        ## Client/server

        Running the database as a separate server lets several application processes, or
        several machines, share one index, and lets the index stay loaded while applications
        restart. With Chroma, start a server with chroma run --path ./data --port 8000 (8000 is
        the default port) and connect from Python with chromadb.HttpClient(host="localhost",
        port=8000). The client API is the same as for the embedded client, so code written for
        one works with the other. A Chroma server also separates data into tenants and
        databases, which is useful when one server hosts several unrelated applications.

        ## Sharding

        When one machine can no longer hold the index in memory or answer queries fast enough,
        the collection is split into shards on several nodes. Records can be assigned by a hash
        of their id, which spreads them evenly, or by a key such as the tenant or customer,
        which keeps each tenant's data together so that most queries touch a single shard.

        A query over all shards uses scatter-gather: a coordinator sends the query to every
        shard, each shard returns its own top k results with their distances, and the
        coordinator merges the lists and keeps the global top k. Each shard must return the full
        k, not k divided by the number of shards, because all of the best results may live on
        the same shard. Latency is set by the slowest shard, so shards should be of similar size.

        ## Replication

        Replicas are copies of a shard on different nodes. They add read throughput, since
        queries can be spread over the copies, and availability, since a failed node does not
        lose data. Every write must reach all replicas; with asynchronous replication a record
        that was just added may briefly be missing from some query results.

        ## When to scale out

        Scale up before scaling out. Measure memory use and the 95th-percentile query latency;
        then try, in order, a machine with more memory, lighter index settings, and quantisation.
        Shard only when a single well-tuned machine is no longer enough, because every shard
        adds operational work and a network hop to every query.
        """,
    ),
)

# ---------------------------------------------------------------------------------------------
# Layout: turn the text into drawing operators, one content stream per page.
# ---------------------------------------------------------------------------------------------


def _num(value: float) -> str:
    """Format a coordinate compactly and deterministically (at most two decimals)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def pdf_string(text: str) -> bytes:
    """Encode ``text`` as a PDF literal string in WinAnsiEncoding (cp1252), with escapes."""
    out = bytearray(b"(")
    for byte in text.encode("cp1252"):
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif 32 <= byte < 127:
            out.append(byte)
        else:
            out += f"\\{byte:03o}".encode("ascii")
    out += b")"
    return bytes(out)


def wrap(text: str, font: Font, size: float, width: float) -> list[str]:
    """Split ``text`` into lines no wider than ``width`` points, breaking only at spaces."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and font.width(candidate, size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    for line in lines:
        if font.width(line, size) > width:
            raise ValueError(f"word too long for the line width: {line!r}")
    return lines


def parse_blocks(body: str) -> list[tuple[str, str]]:
    """Split a page body into (kind, text) blocks: kind is "subhead", "bullet" or "para"."""
    blocks: list[tuple[str, str]] = []
    for raw in body.strip().split("\n\n"):
        text = " ".join(raw.split()).replace(" * ", " \u00d7 ").replace(" -- ", " \u2013 ")
        if not text:
            continue
        if text.startswith("## "):
            blocks.append(("subhead", text[3:]))
        elif text.startswith("- "):
            blocks.append(("bullet", text[2:]))
        else:
            blocks.append(("para", text))
    return blocks


class PageCanvas:
    """Collects the content-stream operators of one page, top to bottom."""

    def __init__(self) -> None:
        self.ops: list[bytes] = []
        self.y: float = PAGE_HEIGHT - MARGIN_TOP

    def text(
        self,
        x: float,
        y: float,
        text: str,
        font: Font,
        size: float,
        rgb: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        """Draw one line of text with its baseline starting at (x, y)."""
        color = " ".join(_num(c) for c in rgb)
        self.ops.append(
            f"BT {color} rg /{font.resource} {_num(size)} Tf {_num(x)} {_num(y)} Td ".encode()
            + pdf_string(text)
            + b" Tj ET"
        )

    def rule(self, y: float, gray: float = 0.7, width: float = 0.6) -> None:
        """Draw a horizontal line across the text width at height ``y``."""
        self.ops.append(
            f"{_num(gray)} G {_num(width)} w {MARGIN_X} {_num(y)} m "
            f"{PAGE_WIDTH - MARGIN_X} {_num(y)} l S".encode()
        )

    def lines(
        self,
        lines: Sequence[str],
        font: Font,
        size: float,
        leading: float,
        x: float = MARGIN_X,
        rgb: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        """Draw consecutive lines, moving down by ``leading`` before each baseline."""
        for line in lines:
            self.y -= leading
            self.text(x, self.y, line, font, size, rgb)

    def content(self) -> bytes:
        """Return the page's content stream."""
        return b"\n".join(self.ops) + b"\n"


def layout_page(page: Page, number: int, total: int) -> bytes:
    """Lay out one handbook page and return its content stream."""
    canvas = PageCanvas()
    if number == 1:
        canvas.lines([DOC_TITLE], BOLD, TITLE_SIZE, TITLE_SIZE, rgb=HEADING_RGB)
        canvas.lines([DOC_SUBTITLE], REGULAR, BODY_SIZE + 1, BODY_LEADING + 4)
        canvas.y -= 10
        canvas.rule(canvas.y, gray=0.55, width=1.0)
        canvas.y -= 12

    heading_lines = wrap(page.heading, BOLD, HEADING_SIZE, TEXT_WIDTH)
    canvas.lines(heading_lines, BOLD, HEADING_SIZE, HEADING_SIZE + 4, rgb=HEADING_RGB)
    canvas.y -= 8

    for kind, text in parse_blocks(page.body):
        if kind == "subhead":
            canvas.y -= 5
            sub = wrap(text, BOLD, SUBHEAD_SIZE, TEXT_WIDTH)
            canvas.lines(sub, BOLD, SUBHEAD_SIZE, SUBHEAD_SIZE + 4, rgb=HEADING_RGB)
            canvas.y -= 1
        elif kind == "bullet":
            item = wrap(text, REGULAR, BODY_SIZE, TEXT_WIDTH - BULLET_INDENT)
            canvas.text(MARGIN_X + 3, canvas.y - BODY_LEADING, "\u2022", REGULAR, BODY_SIZE)
            canvas.lines(item, REGULAR, BODY_SIZE, BODY_LEADING, x=MARGIN_X + BULLET_INDENT)
            canvas.y -= PARAGRAPH_GAP
        else:
            para = wrap(text, REGULAR, BODY_SIZE, TEXT_WIDTH)
            canvas.lines(para, REGULAR, BODY_SIZE, BODY_LEADING)
            canvas.y -= PARAGRAPH_GAP

    if canvas.y < MARGIN_BOTTOM:
        raise ValueError(
            f"page {number} ({page.heading!r}) overflows the bottom margin by "
            f"{MARGIN_BOTTOM - canvas.y:.0f} pt; shorten its text"
        )

    gray = (FOOTER_GRAY,) * 3
    canvas.rule(FOOTER_Y + 12, gray=0.8, width=0.5)
    canvas.text(MARGIN_X, FOOTER_Y, DOC_TITLE, REGULAR, FOOTER_SIZE, gray)
    label = f"Page {number} of {total}"
    label_x = PAGE_WIDTH - MARGIN_X - REGULAR.width(label, FOOTER_SIZE)
    canvas.text(label_x, FOOTER_Y, label, REGULAR, FOOTER_SIZE, gray)
    return canvas.content()


# ---------------------------------------------------------------------------------------------
# The PDF file itself: objects, cross-reference table and trailer.
# ---------------------------------------------------------------------------------------------


def build_pdf(contents: Sequence[bytes], title: str) -> bytes:
    """Assemble a PDF 1.4 file from one content stream per page."""
    # Object numbers: 1 catalog, 2 page tree, 3.. fonts, then info, then (page, content) pairs.
    font_ids = {font.resource: 3 + index for index, font in enumerate(FONTS)}
    info_id = 3 + len(FONTS)
    first_page_id = info_id + 1
    page_ids = [first_page_id + 2 * index for index in range(len(contents))]

    font_refs = " ".join(f"/{name} {obj} 0 R" for name, obj in font_ids.items())
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{pid} 0 R' for pid in page_ids)}] "
        f"/Count {len(page_ids)} >>".encode(),
    ]
    objects += [
        f"<< /Type /Font /Subtype /Type1 /BaseFont /{font.base_font} "
        f"/Encoding /WinAnsiEncoding >>".encode()
        for font in FONTS
    ]
    objects.append(b"<< /Title " + pdf_string(title) + b" /Producer (scripts/make_kb_pdf.py) >>")
    for page_id, content in zip(page_ids, contents, strict=True):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources << /Font << {font_refs} >> /ProcSet [/PDF /Text] >> "
            f"/Contents {page_id + 1} 0 R >>".encode()
        )
        objects.append(f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"endstream")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"

    xref_offset = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode()
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info_id} 0 R >>\n"
        f"startxref\n{xref_offset}\n%%EOF\n"
    ).encode()
    return bytes(out)


def make_handbook() -> bytes:
    """Lay out every page of the handbook and return the PDF file's bytes."""
    total = len(PAGES)
    contents = [layout_page(page, number, total) for number, page in enumerate(PAGES, start=1)]
    return build_pdf(contents, DOC_TITLE)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the handbook to the path given on the command line, or to the default path."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    if len(args) > 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(args[0]) if args else DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    data = make_handbook()
    out.write_bytes(data)
    print(f"wrote {out} ({len(PAGES)} pages, {len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
