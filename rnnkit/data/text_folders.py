"""Text from folders: one folder per class (the aclImdb layout) and plain-text corpora.

Files are read as strict UTF-8 (a bad byte is reported with the file, line and byte offset),
line endings become "\\n", and paths are visited in sorted order so every machine reads the same
dataset. Hidden files and folders (".git", ".ipynb_checkpoints") are never data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rnnkit.data.tables import existing, read_text, split_suffix
from rnnkit.data.types import LabeledTexts, TextClassificationDataset, TextCorpus
from rnnkit.errors import DataError

logger = logging.getLogger(__name__)

# aclImdb's train/unsup holds 50,000 unlabelled reviews for unsupervised pre-training; read as a
# third class it would swamp pos and neg with reviews of either sentiment.
UNLABELLED_FOLDERS = frozenset({"unsup"})


def load_text_folder(path: str | Path) -> TextClassificationDataset:
    """Labelled texts from one folder per class (the aclImdb layout).

    Two layouts are accepted; files are read in sorted path order:

        root/<class>/*.txt                                    -> all in `data`
        root/train/<class>/*.txt and root/test/<class>/*.txt  -> `data` and `test`

    Sub-folders named `unsup` (aclImdb's unlabelled reviews), hidden folders and folders with
    no `.txt` file are not classes and are skipped; files directly in `root` or `root/train`
    (aclImdb's README, vocabulary and URL lists) are ignored. `.txt` files below a class folder
    are found recursively.

    Raises:
        DataError: no class folders, an empty or non-UTF-8 `.txt` file (named, with the byte
            offset), or a test class that training does not have.
    """
    root = existing(path)
    if not root.is_dir():
        raise DataError("expected a folder of class folders (root/<class>/*.txt)", path=root)
    train = class_folders(root / "train")
    if not train:
        if class_folders(root / "test"):
            raise DataError(
                "found test/<class> folders but no train/<class> folders beside them",
                path=root / "test",
            )
        return TextClassificationDataset(str(root), _read_classes(root), source=str(root))
    data = _read_classes(root / "train", train)
    test_root = root / "test"
    test_classes = class_folders(test_root)
    if not test_classes:
        return TextClassificationDataset(str(root), data, source=str(root / "train"))
    unseen = sorted(set(test_classes) - set(train))
    if unseen:
        raise DataError(
            f"class folder(s) {unseen} appear only in the test folder; training classes are "
            f"{sorted(train)}",
            path=test_root / unseen[0],
        )
    test = _read_classes(test_root, test_classes)
    return TextClassificationDataset(
        str(root), data, test, source=str(root / "train"), test_source=str(test_root)
    )


def load_corpus(path: str | Path) -> TextCorpus:
    """Running text for a language model: a `.txt` file, or every `.txt` file under a folder.

    Each file is one document; a folder is searched recursively in sorted path order (hidden
    files skipped). Line endings become "\\n"; empty files in a folder are skipped.

    Raises:
        DataError: no `.txt` file, only empty ones, or a file that is not UTF-8 (with line).
    """
    root, files = corpus_files(path)
    documents = []
    for file in files:
        text = read_text(file)
        if text.strip():
            documents.append(text)
        else:
            logger.warning("skipping empty file %s", file)
    if not documents:
        raise DataError("the corpus is empty: every .txt file is empty or whitespace", path=root)
    return TextCorpus(str(root), documents, source=str(root))


def folder_kind(path: Path) -> str | None:
    """What a folder holds: "labeled-texts" (class folders, or `train/` of them), "corpus"
    (loose `.txt` files and no class folders), or None when it cannot be told (both, neither)."""
    if class_folders(path / "train"):
        return "labeled-texts"
    has_classes = bool(class_folders(path))
    has_texts = any(is_text_file(child) for child in path.iterdir())
    if has_classes == has_texts:
        return None
    return "labeled-texts" if has_classes else "corpus"


def corpus_files(path: str | Path) -> tuple[Path, list[Path]]:
    """(root, the `.txt` files of a corpus in reading order): one file, or a folder's, recursively.

    Raises:
        DataError: nothing there, a file that is not `.txt` (optionally .gz/.bz2/.xz), or a
            folder without `.txt` files (hidden paths skipped).
    """
    root = existing(path)
    if root.is_dir():
        files = txt_files(root)
        if not files:
            raise DataError("no .txt files in this folder (searched recursively)", path=root)
        return root, files
    if is_text_file(root):
        return root, [root]
    raise DataError(
        f"expected a .txt file (optionally .gz/.bz2/.xz) or a folder of them, got "
        f"{''.join(root.suffixes) or 'a file with no suffix'!r}",
        path=root,
    )


def is_text_file(path: Path) -> bool:
    """A file named *.txt, or *.txt.gz/.bz2/.xz."""
    return path.is_file() and split_suffix(path)[0] == ".txt"


def txt_files(root: Path) -> list[Path]:
    """`.txt` files under `root`, recursively, in sorted order, skipping hidden paths."""
    found = []
    for file in root.rglob("*"):
        relative = file.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not is_text_file(file):
            continue
        found.append((relative.as_posix(), file))
    return [file for _, file in sorted(found)]


def class_folders(level: Path) -> dict[str, list[Path]]:
    """Class name -> its .txt files, for each sub-folder of `level` that is a class."""
    if not level.is_dir():
        return {}
    classes = {}
    for child in sorted(level.iterdir()):
        if not child.is_dir() or child.name.startswith((".", "__")):
            continue
        if child.name in UNLABELLED_FOLDERS:
            logger.info("skipping %s: unlabelled examples", child)
            continue
        files = txt_files(child)
        if files:
            classes[child.name] = files
        else:
            logger.info("skipping %s: no .txt files", child)
    return classes


def _read_classes(level: Path, classes: dict[str, list[Path]] | None = None) -> LabeledTexts:
    """The texts of every class folder under `level` (found there unless given)."""
    if classes is None:
        classes = class_folders(level)
    if not classes:
        raise DataError(
            "no class folders with .txt files; expected root/<class>/*.txt or "
            "root/train/<class>/*.txt (+ root/test/<class>/*.txt)",
            path=level,
        )
    texts, labels = [], []
    for label, files in classes.items():
        texts += [_read_example(file) for file in files]
        labels += [label] * len(files)
    return LabeledTexts(texts, labels)


def _read_example(file: Path) -> str:
    text = read_text(file)
    if not text.strip():
        raise DataError("empty file; each .txt file must hold the text of one example", path=file)
    # Editors end files with a newline; it is not part of the review.
    return text.rstrip("\n")
