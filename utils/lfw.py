"""LFW pairs files: parse them (LF or CRLF, with or without the `10 300` header) and map them to
image paths and official folds (by position in the file)."""
import dataclasses
import os

from utils.errors import PairsFileError


@dataclasses.dataclass(frozen=True)
class Pair:
    path_1: str
    path_2: str
    same: bool
    fold: int
    line: int


def parse_folds(text):
    """'1', '1,3' or '2-10' -> sorted fold numbers counted from 1, as the official folds are."""
    from utils.errors import SettingError

    folds = set()
    try:
        for part in str(text).split(","):
            lo, _, hi = part.partition("-")
            folds.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise SettingError(f"folds must be numbers or ranges like 1 or 1,3 or 2-10, "
                           f"got {text!r}") from None
    if not folds or min(folds) < 1:
        raise SettingError(f"folds are counted from 1, got {text!r}")
    return sorted(folds)


def select_folds(pairs, folds, pairs_path):
    """The pairs of the given folds (numbered from 1); a fold the file lacks is an error."""
    have = sorted({p.fold + 1 for p in pairs})
    lacking = [k for k in folds if k not in have]
    if lacking:
        raise PairsFileError(f"{pairs_path} has folds {have[0]}-{have[-1]}, not fold "
                             f"{lacking[0]}")
    return [p for p in pairs if p.fold + 1 in folds]


def image_path(lfw_dir, name, number):
    return os.path.join(lfw_dir, name, f"{name}_{int(number):04d}.jpg")


def read_pairs(pairs_path, lfw_dir):
    """Parse a pairs file into Pairs; a malformed line is an error naming its line number."""
    if not os.path.exists(pairs_path):
        raise PairsFileError(f"pairs file not found: {pairs_path} (LFW's View 2 pairs.txt; "
                             f"see the README for where to get it)")
    from utils.fileio import read_text_lines

    lines = read_text_lines(pairs_path, PairsFileError, "LFW's View 2 pairs.txt")
    lines = [(i, line.strip()) for i, line in enumerate(lines, start=1) if line.strip()]
    if not lines:
        raise PairsFileError(f"{pairs_path} is empty")
    n_folds = None
    first = lines[0][1].split()
    if len(first) == 2 and all(p.isdigit() for p in first):
        n_folds, per_kind = int(first[0]), int(first[1])
        lines = lines[1:]
    rows = []
    for number, line in lines:
        parts = line.split()
        try:
            if len(parts) == 3:
                name, i, j = parts
                rows.append((image_path(lfw_dir, name, i), image_path(lfw_dir, name, j), True,
                             number))
            elif len(parts) == 4:
                n1, i, n2, j = parts
                rows.append((image_path(lfw_dir, n1, i), image_path(lfw_dir, n2, j), False,
                             number))
            else:
                raise ValueError
        except ValueError:
            raise PairsFileError(f"{pairs_path}:{number}: expected 'name i j' or "
                                 f"'name1 i name2 j', got {line!r}") from None
    if n_folds is None:
        n_folds, fold_size = 10, max(1, len(rows) // 10)
    else:
        fold_size = 2 * per_kind
        whole = len(rows) // fold_size if fold_size else 0
        if len(rows) > n_folds * fold_size or not whole or whole * fold_size != len(rows):
            raise PairsFileError(f"{pairs_path}: header says {n_folds} folds of {fold_size} "
                                 f"pairs but the file has {len(rows)} pairs, not a whole number "
                                 f"of folds (to score some folds, use the whole file and "
                                 f"--folds)")
        n_folds = whole  # the first folds of the file (`head -601 pairs.txt`: fold 1)
    return [Pair(p1, p2, same, min(k // fold_size, n_folds - 1), line)
            for k, (p1, p2, same, line) in enumerate(rows)]
