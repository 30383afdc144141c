import pytest

from ingest.chunking import Chunker, chunk_id
from rag.types import Document


def words(text: str) -> int:
    """A stand-in tokenizer for the pure tests: one token per word, plus two special tokens."""
    return len(text.split()) + 2


def test_chunks_respect_the_budget_and_overlap() -> None:
    text = " ".join(f"word{i}." for i in range(1000))
    chunker = Chunker(words, chunk_size=50, chunk_overlap=10, max_tokens=256)
    pieces = chunker.split_text(text)
    assert all(words(p) - 2 <= 50 for p in pieces)
    assert len(pieces) >= 20
    # consecutive chunks overlap
    assert pieces[0].split()[-1] in pieces[1].split()[:15]


def test_budget_never_exceeds_the_models_limit() -> None:
    chunker = Chunker(words, chunk_size=1000, chunk_overlap=10, max_tokens=128)
    assert chunker.budget == 126
    assert all(words(p) <= 128 for p in chunker.split_text("x " * 5000))


def test_unsplittable_text_is_still_cut_to_the_budget() -> None:
    def chars(text: str) -> int:
        return len(text) + 2

    chunker = Chunker(chars, chunk_size=30, chunk_overlap=0, max_tokens=256)
    assert all(chars(p) - 2 <= 30 for p in chunker.split_text("a" * 500))


def test_ids_are_deterministic_and_carry_metadata() -> None:
    chunker = Chunker(words, chunk_size=20, chunk_overlap=0, max_tokens=256)
    docs = [Document("alpha beta gamma " * 20, "dir/a.pdf", page=2, heading="H")]
    first = chunker.chunk_documents(docs, root="/r", content_hash="h")
    again = chunker.chunk_documents(docs, root="/r", content_hash="h")
    assert [c.id for c in first] == [c.id for c in again]
    assert first[0].metadata() == {
        "source": "dir/a.pdf", "root": "/r", "heading": "H", "chunk_index": 0,
        "content_hash": "h", "chunk_hash": first[0].chunk_hash, "page": 2,
        "context": "a | H",  # the document's header: file name and title
    }
    assert chunk_id("/r", "dir/a.pdf", 0, "abc", "H") != chunk_id("/other", "dir/a.pdf", 0, "abc", "H")
    # the same text under another heading is another chunk (the lexical index reads both)
    assert chunk_id("/r", "dir/a.pdf", 0, "abc", "H") != chunk_id("/r", "dir/a.pdf", 0, "abc", "G")


FILING = """UNITED STATES
SECURITIES AND EXCHANGE COMMISSION
FORM 10-Q
(Mark One)
QUARTERLY REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934
For the quarterly period ended July 1, 2023
Commission File Number: 001-36743
Apple Inc.
(Exact name of Registrant as specified in its charter)
"""


def test_every_chunk_of_a_filing_names_its_company_and_period_but_shows_its_own_text() -> None:
    chunker = Chunker(words, chunk_size=40, chunk_overlap=0, max_tokens=256)
    docs = [Document(FILING, "10q/2023 Q3 AAPL.pdf", page=1),
            Document("Gross margin was 44.5 percent. " * 60, "10q/2023 Q3 AAPL.pdf", page=2)]
    chunks = chunker.chunk_documents(docs, root="/r", content_hash="h")
    header = ("2023 Q3 AAPL | Apple Inc. | Form 10-Q | "
              "for the quarterly period ended July 1, 2023")
    assert len(chunks) > 3 and {c.context for c in chunks} == {header}
    late = chunks[-1]
    assert late.page == 2 and "Apple" not in late.text and "Gross margin" in late.text
    assert late.embed_text == f"{header}\n{late.text}" and late.metadata()["context"] == header


def test_a_report_is_named_by_its_first_lines_without_page_furniture() -> None:
    docs = [Document("Page 1 of 4\nNational Transportation Safety Board\nAviation Accident "
                     "Final Report\nLocation: Belen, NM", "ntsb/20080102X00005.pdf", page=1)]
    header = Chunker(words, chunk_size=40, chunk_overlap=0, max_tokens=256).header_for(docs)
    assert header.startswith("20080102X00005 | National Transportation Safety Board Aviation "
                             "Accident Final Report")


def test_header_and_chunk_together_fit_what_the_model_reads() -> None:
    chunker = Chunker(words, chunk_size=200, chunk_overlap=0, max_tokens=64)
    docs = [Document("Annual Report of the Example Company\n" + "figures and notes " * 300,
                     "report.txt")]
    chunks = chunker.chunk_documents(docs, root="/r", content_hash="h")
    assert chunks[0].context.startswith("report | Annual Report")
    assert all(words(c.embed_text) <= 64 for c in chunks)


def test_headers_off_chunks_the_text_alone() -> None:
    chunker = Chunker(words, chunk_size=20, chunk_overlap=0, max_tokens=256, headers=False)
    docs = [Document(FILING, "2023 Q3 AAPL.pdf", page=1)]
    chunks = chunker.chunk_documents(docs, root="/r", content_hash="h")
    assert all(c.context == "" and c.embed_text == c.text for c in chunks)


@pytest.mark.slow
def test_real_tokenizer_chunks_fit_the_model(embedder) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(embedder.count_tokens, chunk_size=1000, chunk_overlap=30,
                      max_tokens=embedder.max_tokens)
    text = "Retrieval-augmented generation grounds answers in documents. " * 400
    pieces = chunker.split_text(text)
    assert len(pieces) > 1
    assert max(embedder.count_tokens(p) for p in pieces) <= embedder.max_tokens


@pytest.mark.slow
def test_token_counts_are_the_tokenizers_own_past_the_models_length(embedder) -> None:  # type: ignore[no-untyped-def]
    # the saved tokenizer truncates at 256 and pads; counting must do neither
    text = "Chunking counts tokens with the embedder's tokenizer, naïvely or not. " * 60
    expected = len(embedder.tokenizer(text, add_special_tokens=True)["input_ids"])
    assert expected > 2 * embedder.max_tokens
    assert embedder.count_tokens(text) == expected
    assert embedder.count_tokens("hi") == len(embedder.tokenizer("hi")["input_ids"]) == 3


STATEMENT = """CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS (Unaudited)
(In millions, except number of shares which are reflected in thousands and per share amounts)
Three Months Ended Nine Months Ended
July 1,
2023
June 25,
2022
July 1,
2023
June 25,
2022
Net sales:
Products $ 60,584 $ 63,355 $ 230,901 $ 245,241
Services 21,213 19,604 62,886 58,941
Total net sales 81,797 82,959 293,787 304,182
Cost of sales:
Products 39,136 41,485 146,696 155,084
Services 6,248 5,589 18,370 16,411
Total cost of sales 45,384 47,074 165,066 171,495
Gross margin 36,413 35,885 128,721 132,687
Research and development 7,442 6,797 22,608 19,490
Selling, general and administrative 5,973 6,012 18,781 18,654
Total operating expenses 13,415 12,809 41,389 38,144
Operating income 22,998 23,076 87,332 94,543
See accompanying Notes to Condensed Consolidated Financial Statements.
"""


def test_rows_far_below_a_tables_column_headers_are_read_with_them() -> None:
    chunker = Chunker(words, chunk_size=30, chunk_overlap=0, max_tokens=256, table_headers=True)
    docs = [Document("Apple Inc.\nQuarterly Report", "2023 Q3 AAPL.pdf", page=1),
            Document(STATEMENT, "2023 Q3 AAPL.pdf", page=4)]
    chunks = chunker.chunk_documents(docs, root="/r", content_hash="h")
    late = next(c for c in chunks if "Research and development 7,442" in c.text)
    assert "Three Months" not in late.text  # the headers stand far above this row...
    header, table = late.context.split("\n")  # ...and go with it into the embedding and BM25
    assert header == "2023 Q3 AAPL | Apple Inc. Quarterly Report"
    assert table.startswith("CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS (Unaudited) "
                            "Three Months Ended Nine Months Ended July 1, 2023 June 25, 2022")
    assert "In millions" not in table
    top = next(c for c in chunks if c.page == 4)
    assert top.context == header and top.text.startswith("CONDENSED")
    page = "".join(c.text for c in chunks if c.page == 4)
    assert page.replace("\n", "") == STATEMENT.replace("\n", "")  # the text is the page's own


def test_figures_in_a_sentence_are_no_table() -> None:
    chunker = Chunker(words, chunk_size=12, chunk_overlap=0, max_tokens=256, table_headers=True)
    text = ("Revenue rose in the quarter\nto 81,797 from 82,959\nas the notes explain in "
            "detail below for every segment and region.\n" * 4)
    chunks = chunker.chunk_documents([Document(text, "note.pdf", page=1)], root="/r",
                                     content_hash="h")
    assert len(chunks) > 2 and len({c.context for c in chunks}) == 1  # the header alone
    assert "\n" not in chunks[-1].context
