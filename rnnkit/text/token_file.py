"""Token files: a corpus larger than memory, tokenised once, streaming, into a flat file of ids.

    corpus (.txt file or folder) --Corpus.chunks()--> text chunks --TextEncoder--> ids
        --> $RNNKIT_CACHE/tokens/<corpus sha256>-<encoder sha256>.bin    (the ids, raw)
                                                               .json   (dtype, count, hashes)

The text is the one `rnnkit.data.load_corpus` reads into memory: strict UTF-8 (a bad byte is
reported with its file, line and byte offset), a leading byte-order mark dropped, "\\r\\n" and
"\\r" turned into "\\n", files in sorted path order, empty ones skipped, documents joined by a
blank line. It is read in blocks cut at line breaks and encoded in chunks of a few MB, each split
into pieces that the encoder takes as one batch (so `tokenizers` runs them on every core).

Chunks and pieces end at a *safe* line break: a "\\n" between two characters that are not
whitespace. No tokenizer here has a token across one (byte-level BPE's pre-tokenizer always
splits there, `basic_english` splits on whitespace, `char` is one token per character), so the
ids are exactly those of encoding the whole text at once (a text with no such break in a whole
chunk is cut at its last line break, or at the chunk's end; only `bpe` may tokenise the few
characters there differently).

Ids are stored in the smallest unsigned type that holds the vocabulary (uint8 up to 256 tokens:
a character vocabulary; uint16 up to 65,536; else uint32): a 2 GB character corpus is a 2 GB
file rather than the 16 GB of int64. The file is keyed by the corpus content and the encoder
(`TextEncoder.sha256`), so a second run, a resumed run or another process of a data-parallel run
reuses it; a lock file makes concurrent processes tokenise once. It is written as a temporary
file in the same folder, fsynced, and renamed; the JSON sidecar is written last, so a file
without its sidecar is never used.

Reading: `TokenFile.ids()` is a read-only `numpy.memmap`; `SliceReader` reads many short slices
of one (the rows of a batch) with `os.pread`, so the pages read never count toward the
process's resident memory, which stays flat however much of the file an epoch reads.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import json
import logging
import lzma
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

try:  # POSIX; elsewhere concurrent processes may tokenise the same corpus twice (same result)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

from rnnkit.data.cache import cache_root
from rnnkit.data.tables import split_suffix
from rnnkit.data.text_folders import corpus_files
from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_open, atomic_write_json
from rnnkit.text.encoder import TextEncoder

logger = logging.getLogger(__name__)

_FORMAT = "rnnkit.token_file"
_VERSION = 1
#: bytes read from a file at a time; a block is cut at its last line break
BLOCK_BYTES = 1 << 19
#: characters per encoded chunk. Small chunks keep the transient memory of each chunk in flight
#: (its text, code points, int64 ids) to a few MB: on the 2-vCPU VM, a 200 MB character corpus
#: peaked at 336 MiB with 512k-character chunks and 627 MiB with 4M ones (torch imported), at
#: no loss of speed (docs/benchmarks.md, "Corpora larger than memory").
CHUNK_CHARS = 1 << 19
#: characters per piece of a chunk: the encoder takes a chunk's pieces as one batch, which
#: `tokenizers` spreads over every core
PIECE_CHARS = 1 << 16
_BOM = b"\xef\xbb\xbf"
# decompressing readers over an open file; _file_text closes them
_OPENERS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    ".bz2": lambda raw: bz2.BZ2File(raw, mode="rb"),
    ".xz": lambda raw: lzma.LZMAFile(raw, mode="rb"),  # noqa: SIM115
}
_DTYPES = (np.uint8, np.uint16, np.uint32)


def token_dir() -> Path:
    """Where token files live: `<cache_root()>/tokens` (`$RNNKIT_CACHE` overrides the root)."""
    return cache_root() / "tokens"


def ids_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds ids `0 .. vocab_size - 1`."""
    for dtype in _DTYPES:
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ConfigError(f"a vocabulary of {vocab_size:,} tokens does not fit 32-bit ids")


# -- the corpus ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """A `.txt` file (optionally .gz/.bz2/.xz) or a folder of them, read without loading it.

    Attributes:
        root: the file or folder given.
        files: the `.txt` files, in the order their text is joined (sorted relative paths).
    """

    root: Path
    files: tuple[Path, ...]

    @classmethod
    def open(cls, path: str | Path) -> Corpus:
        """The corpus at `path`.

        Raises:
            DataError: nothing there, a file that is not `.txt`, or a folder without `.txt`
                files (searched recursively, hidden paths skipped).
        """
        root, files = corpus_files(path)
        return cls(root, tuple(files))

    @property
    def nbytes(self) -> int:
        """Bytes on disk (compressed files count compressed)."""
        return sum(_stat(file).st_size for file in self.files)

    def sha256(self) -> str:
        """Hex sha256 of the content: a file's own sha256; for a folder, of each file's path
        relative to the folder, size and sha256, in reading order."""
        if len(self.files) == 1 and self.files[0] == self.root:
            return _file_sha256(self.root)
        digest = hashlib.sha256()
        for file in self.files:
            relative = file.relative_to(self.root).as_posix()
            line = f"{relative}\t{_stat(file).st_size}\t{_file_sha256(file)}\n"
            digest.update(line.encode("utf-8"))
        return digest.hexdigest()

    def chunks(
        self,
        *,
        max_bytes: int | None = None,
        chunk_chars: int | None = None,
        desc: str | None = None,
    ) -> Iterator[str]:
        """The corpus text in consecutive chunks of about `chunk_chars`, each ending at a safe
        line break (see the module docstring) or at the end of the text.

        Args:
            max_bytes: stop once this many bytes (on disk) are read; None reads everything.
            chunk_chars: the chunk size; None for `CHUNK_CHARS`.
            desc: show a progress bar in bytes with this label (on a terminal only).

        Raises:
            DataError: an unreadable file, bytes that are not UTF-8 (file, line, byte offset), or
                no text at all.
        """
        from tqdm import tqdm

        chunk_chars = chunk_chars or CHUNK_CHARS
        total = self.nbytes if max_bytes is None else min(max_bytes, self.nbytes)
        buffer: list[str] = []
        size = consumed = 0
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=desc,
            disable=True if desc is None else None,  # None: shown on a terminal only
        )
        with bar, contextlib.closing(self._text()) as pieces:
            for text, read in pieces:
                bar.update(read)
                consumed += read
                if text:
                    buffer.append(text)
                    size += len(text)
                if size >= chunk_chars:
                    joined = "".join(buffer)
                    cut = _chunk_end(joined, len(joined) // 2, len(joined))
                    yield joined[:cut]
                    rest = joined[cut:]
                    buffer, size = ([rest], len(rest)) if rest else ([], 0)
                if max_bytes is not None and consumed >= max_bytes:
                    break
            tail = "".join(buffer)
            if tail:
                yield tail

    def _text(self) -> Iterator[tuple[str, int]]:
        """(text, bytes read on disk) of the documents, joined as `load_corpus` joins them."""
        emitted = False
        for file in self.files:
            pending: list[str] = []  # leading whitespace of a file not yet known to hold text
            started = False
            for text, read in _file_text(file):
                if started:
                    yield text, read
                elif text.strip():
                    started = True
                    head = "".join([*pending, text])
                    pending = []
                    yield ("\n\n" + head if emitted else head), read
                    emitted = True
                else:
                    pending.append(text)
                    yield "", read
            if not started:
                logger.warning("skipping empty file %s", file)
        if not emitted:
            raise DataError(
                "the corpus is empty: every .txt file is empty or whitespace", path=self.root
            )


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except OSError as err:
        raise DataError(f"could not read the file: {err.strerror or err}", path=path) from err


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(BLOCK_BYTES):
                digest.update(block)
    except OSError as err:
        raise DataError(f"could not read the file: {err.strerror or err}", path=path) from err
    return digest.hexdigest()


def _utf8_end(data: bytes) -> int:
    """The length of `data`'s longest prefix that does not end inside a UTF-8 sequence."""
    n = len(data)
    lead = n - 1
    while lead >= max(0, n - 4) and data[lead] & 0xC0 == 0x80:  # continuation bytes
        lead -= 1
    if lead < 0:
        return n
    first = data[lead]
    need = 1 if first < 0xC0 else 2 if first < 0xE0 else 3 if first < 0xF0 else 4
    return n if lead + need <= n else lead


def _file_text(path: Path) -> Iterator[tuple[str, int]]:
    """One file's text in blocks cut at line breaks, with the bytes read on disk for each."""
    compression = split_suffix(path)[1]
    after = " (after decompression)" if compression else ""
    try:
        raw = open(path, "rb")  # noqa: SIM115 (closed below, also when the reader stops early)
    except OSError as err:
        raise DataError(f"could not read the file: {err.strerror or err}", path=path) from err
    with contextlib.ExitStack() as stack:
        stack.enter_context(raw)
        stream = raw if compression is None else stack.enter_context(_OPENERS[compression](raw))
        carry, offset, line, position, first = b"", 0, 1, 0, True
        while True:
            try:
                data = stream.read(BLOCK_BYTES)
            except (OSError, EOFError, lzma.LZMAError, zlib.error) as err:
                what = f"decompress the {compression} file" if compression else "read the file"
                raise DataError(f"could not {what}: {err}", path=path) from err
            end = not data
            buf = carry + data if carry else data
            if first and (len(buf) >= len(_BOM) or end):
                first = False
                if buf.startswith(_BOM):
                    buf, offset = buf[len(_BOM) :], len(_BOM)
            if first:  # fewer than 3 bytes so far: cannot tell a byte-order mark yet
                carry = buf
                continue
            if end:
                cut = len(buf)
            else:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:  # no line break in the block: cut at a character boundary
                    cut = _utf8_end(buf)
                    if cut and buf[cut - 1] == 0x0D:  # keep "\r\n" together
                        cut -= 1
            piece, carry = buf[:cut], buf[cut:]
            try:
                text = piece.decode("utf-8")
            except UnicodeDecodeError as err:
                at = offset + err.start
                raise DataError(
                    f"not valid UTF-8: byte 0x{piece[err.start]:02x} at byte offset {at}{after}. "
                    "Re-encode the file as UTF-8, e.g. `iconv -f cp1252 -t utf-8 IN > OUT` "
                    "(cp1252 or latin-1 is the usual culprit)",
                    path=path,
                    line=line + piece.count(b"\n", 0, err.start),
                ) from err
            offset += cut
            line += piece.count(b"\n")
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            read = raw.tell() - position
            position += read
            yield text, read
            if end:
                return


def _safe_cut(text: str, lo: int, hi: int) -> int | None:
    """The last position p in (lo, hi] just after a "\\n" between two non-whitespace characters."""
    hi = min(hi, len(text) - 1)  # the character after the break must exist
    i = text.rfind("\n", lo, hi)
    for _ in range(10_000):  # a run of blank lines or indented text: give up after a while
        if i <= 0:
            return None
        if not text[i - 1].isspace() and not text[i + 1].isspace():
            return i + 1
        i = text.rfind("\n", lo, i)
    return None


def _chunk_end(text: str, lo: int, hi: int) -> int:
    """Where a chunk of `text` ends: a safe break, else the last line break, else `hi`."""
    cut = _safe_cut(text, lo, hi)
    if cut is None:
        cut = text.rfind("\n", lo, hi) + 1 or hi
    return cut


def _pieces(chunk: str) -> list[str]:
    """`chunk` cut at safe breaks into pieces of about `PIECE_CHARS` (one batch to encode)."""
    pieces, start, size = [], 0, PIECE_CHARS
    while len(chunk) - start > 2 * size:
        cut = _safe_cut(chunk, start + size, start + 2 * size)
        if cut is None:
            break
        pieces.append(chunk[start:cut])
        start = cut
    pieces.append(chunk[start:])
    return pieces


# -- the token file ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenFile:
    """A tokenised corpus in the cache: `path` holds `tokens` ids of type `dtype`, raw.

    Attributes:
        path: the `.bin` file of ids.
        meta: its JSON sidecar (`dtype`, `tokens`, `chars`, `corpus`, `encoder_sha256`, ...).
    """

    path: Path
    meta: dict[str, Any]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.meta["dtype"])

    @property
    def tokens(self) -> int:
        return int(self.meta["tokens"])

    @property
    def chars(self) -> int:
        """Characters of the text the ids encode."""
        return int(self.meta["chars"])

    @property
    def corpus_sha256(self) -> str:
        return str(self.meta["corpus"]["sha256"])

    @property
    def encoder_sha256(self) -> str:
        return str(self.meta["encoder_sha256"])

    def ids(self) -> np.memmap:
        """The ids, (tokens,), as a read-only memory map (nothing is read until sliced)."""
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.tokens,))

    @classmethod
    def find(cls, corpus_sha256: str, encoder_sha256: str) -> TokenFile | None:
        """The cached token file of this corpus and encoder, or None (also when damaged)."""
        ids_path, meta_path = _paths(corpus_sha256, encoder_sha256)
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            found = cls(ids_path, meta)
            fits = (
                meta.get("format") == _FORMAT
                and meta.get("version") == _VERSION
                and found.corpus_sha256 == corpus_sha256
                and found.encoder_sha256 == encoder_sha256
                and found.tokens > 0
                and ids_path.stat().st_size == found.tokens * found.dtype.itemsize
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("ignoring the damaged token file %s: %s", meta_path, err)
            return None
        if not fits:
            logger.warning("ignoring the token file %s: it does not match its sidecar", ids_path)
            return None
        return found


def _paths(corpus_sha256: str, encoder_sha256: str) -> tuple[Path, Path]:
    stem = f"{corpus_sha256[:32]}-{encoder_sha256[:32]}"
    folder = token_dir()
    return folder / f"{stem}.bin", folder / f"{stem}.json"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _encoded(
    chunks: Iterator[str], encoder: TextEncoder, dtype: np.dtype
) -> Iterator[tuple[bytes, int]]:
    """(ids as `dtype` bytes, characters) of each chunk, in order, encoded on every core.

    The encoders' native loops (NumPy's gathers, Arrow's kernels, Rust) release the GIL, so
    while one thread encodes a chunk, another reads and decodes the next. At most
    `workers + 1` chunks are in flight, which bounds the memory.
    """

    def encode(chunk: str) -> tuple[bytes, int]:
        return encoder.encode_batch_arrays(_pieces(chunk)).ids.astype(dtype).tobytes(), len(chunk)

    workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if workers == 1:
        yield from map(encode, chunks)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[tuple[bytes, int]]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(encode, chunk))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def tokenize_corpus(
    corpus: Corpus | str | Path,
    encoder: TextEncoder,
    *,
    corpus_sha256: str | None = None,
    desc: str | None = "tokenising",
) -> TokenFile:
    """The corpus's ids in the cache: found there, or tokenised now (once, whatever the processes).

    Args:
        corpus: a `Corpus` or its path.
        encoder: the tokenizer and vocabulary.
        corpus_sha256: `corpus.sha256()` when already known (it costs a read of the corpus).
        desc: the progress bar's label; None shows none.

    Raises:
        DataError: as `Corpus.chunks`, or a text that makes no token.
    """
    corpus = corpus if isinstance(corpus, Corpus) else Corpus.open(corpus)
    corpus_sha256 = corpus_sha256 or corpus.sha256()
    encoder_sha256 = encoder.sha256()
    ids_path, meta_path = _paths(corpus_sha256, encoder_sha256)
    with _locked(ids_path.with_suffix(".lock")):
        found = TokenFile.find(corpus_sha256, encoder_sha256)
        if found is not None:
            logger.info("reusing %s (%s tokens)", found.path, f"{found.tokens:,}")
            return found
        dtype = ids_dtype(len(encoder.vocab))
        started = time.perf_counter()
        tokens = chars = 0
        # a temporary file beside it, fsynced and renamed (removed if anything fails)
        with atomic_open(ids_path, "wb") as f:
            for ids, n_chars in _encoded(corpus.chunks(desc=desc), encoder, dtype):
                f.write(ids)
                tokens += len(ids) // dtype.itemsize
                chars += n_chars
            if tokens == 0:
                raise DataError(
                    f"the corpus makes no {encoder.tokenizer.name} token", path=corpus.root
                )
        seconds = time.perf_counter() - started
        nbytes = corpus.nbytes
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "dtype": dtype.name,
            "tokens": tokens,
            "chars": chars,
            "corpus": {
                "path": str(corpus.root.resolve()),
                "sha256": corpus_sha256,
                "bytes": nbytes,
                "files": len(corpus.files),
            },
            "encoder_sha256": encoder_sha256,
            "vocab_size": len(encoder.vocab),
            "tokenizer": encoder.tokenizer.name,
            "seconds": round(seconds, 3),
            "mb_per_second": round(nbytes / 1e6 / max(seconds, 1e-9), 1),
        }
        atomic_write_json(meta_path, meta)
        logger.info(
            "tokenised %s (%.0f MB) into %s tokens in %.1f s (%.1f MB/s): %s",
            corpus.root,
            nbytes / 1e6,
            f"{tokens:,}",
            seconds,
            meta["mb_per_second"],
            ids_path,
        )
        return TokenFile(ids_path, meta)


# -- reading -------------------------------------------------------------------------------------


def _memmap_file_offset(ids: np.ndarray) -> tuple[str, int] | None:
    """(file, byte offset of ids[0]) when `ids` is a contiguous 1-D view of a `numpy.memmap`."""
    mm = getattr(ids, "_mmap", None)
    filename = getattr(ids, "filename", None)
    if mm is None or filename is None or ids.ndim != 1 or len(ids) == 0:
        return None
    if ids.strides[0] != ids.dtype.itemsize:
        return None
    # A memmap's slices keep the parent's `offset`, so the position comes from the addresses:
    # the mapping starts at `offset` rounded down to the allocation granularity.
    import mmap

    mapped_at = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    mapping_start = int(ids.offset) - int(ids.offset) % mmap.ALLOCATIONGRANULARITY
    return str(filename), mapping_start + (ids.ctypes.data - mapped_at)


class SliceReader:
    """Reads equal-length slices of a 1-D id array at many starts, as one int64 block.

    For a `numpy.memmap` (or a contiguous slice of one) the slices are read from its file with
    `os.pread`, so the pages never enter this process's mapping and its resident memory does
    not grow with the bytes read. Anything else (a NumPy array, a CPU tensor, a list) is indexed
    in memory.

    Args:
        ids: (N,) token ids.
    """

    def __init__(self, ids: Any) -> None:
        located = _memmap_file_offset(ids) if isinstance(ids, np.memmap) else None
        self._file: tuple[str, int] | None = located
        self._fd: int | None = None
        if located is None:
            self._ids = np.asarray(ids).reshape(-1)
            self.dtype = self._ids.dtype
            self._length = len(self._ids)
        else:
            self._ids = None
            self.dtype = ids.dtype
            self._length = len(ids)

    def __len__(self) -> int:
        return self._length

    def read(self, starts: np.ndarray, length: int) -> np.ndarray:
        """ids[s : s + length] for each s of `starts`, as int64 (len(starts), length)."""
        starts = np.asarray(starts, dtype=np.int64)
        if len(starts) and (starts.min() < 0 or starts.max() + length > self._length):
            raise IndexError(f"slices of {length} at {starts.tolist()} leave 0..{self._length}")
        if self._file is None:
            assert self._ids is not None
            block = self._ids[starts[:, None] + np.arange(length)]
            return block.astype(np.int64, copy=False)
        path, base = self._file
        if self._fd is None:
            self._fd = os.open(path, os.O_RDONLY)
        item = self.dtype.itemsize
        size = length * item
        raw = b"".join(os.pread(self._fd, size, base + int(s) * item) for s in starts)
        if len(raw) != size * len(starts):
            raise DataError(
                f"the token file is shorter than expected ({len(raw)} bytes)", path=path
            )
        block = np.frombuffer(raw, dtype=self.dtype).reshape(len(starts), length)
        return block.astype(np.int64)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
