"""LFW's people.txt: the people of each View 2 fold (folds are disjoint in people)."""
import os


def read_people_folds(people_path):
    """[[(name, image count), ...] per fold] from `people.txt`."""
    with open(people_path, encoding="utf-8") as f:
        tokens = [line.split() for line in f if line.strip()]
    n_folds, folds, k = int(tokens[0][0]), [], 1
    for _ in range(n_folds):
        count = int(tokens[k][0])
        folds.append([(name, int(n)) for name, n in tokens[k + 1:k + 1 + count]])
        k += 1 + count
    return folds


def fold_entries(people, lfw_dir, min_images=1):
    """[(class_id, path)] for the given (name, count) people, class ids in sorted-name order."""
    names = sorted(name for name, n in people if n >= min_images)
    entries = []
    for class_id, name in enumerate(names):
        folder = os.path.join(lfw_dir, name)
        entries += [(class_id, os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
    return entries
