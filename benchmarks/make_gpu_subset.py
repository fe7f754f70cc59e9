"""Write a CIFAR-10 subset small enough to travel to a lent GPU (the device tool carries <= 64 MiB).

    python benchmarks/make_gpu_subset.py ../shared/data/cifar10.npz .gpu_data/cifar10-subset.npz

Keeps the first N training images of each class (default 1600: 16000 images, enough for 4000 labels and a
validation hold-out, with 12000+ unlabeled) and M test images of each class (default 300). The output is
derived from the data: it lives in the git-ignored .gpu_data/ and is never committed.
"""

import argparse
from pathlib import Path

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("source")
    p.add_argument("output")
    p.add_argument("--train-per-class", type=int, default=1600)
    p.add_argument("--test-per-class", type=int, default=300)
    a = p.parse_args()
    with np.load(a.source) as z:
        d = {k: z[k] for k in z.files}
    keep = lambda y, n: np.concatenate([np.flatnonzero(y == c)[:n] for c in range(10)])  # noqa: E731
    tr, te = keep(d["y_train"], a.train_per_class), keep(d["y_test"], a.test_per_class)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.output, x_train=d["x_train"][np.sort(tr)], y_train=d["y_train"][np.sort(tr)],
                        x_test=d["x_test"][np.sort(te)], y_test=d["y_test"][np.sort(te)], class_names=d["class_names"])
    print(f"wrote {a.output}: {len(tr)} train, {len(te)} test images, {Path(a.output).stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
