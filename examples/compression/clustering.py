"""Weight clustering (weight sharing) with tfmot `cluster_weights`: every kernel keeps only a few distinct
values; the converter's manifest reports the unique values per layer.

Run: `python examples/compression/clustering.py --out out/clustering [--epochs 10 --clusters 16]`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds `examples` and `targets`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.compression import common  # noqa: E402


def cluster_model(model_path: Path, train_path: Path, clustered_path: Path, clusters: int, epochs: int, seed: int = 0) -> Path:
    """Cluster the kernels into `clusters` shared values, fine-tune, strip the wrappers, save .h5."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    x, y = common.load_xy(train_path)
    centroids = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS
    clustered = tfmot.clustering.keras.cluster_weights(common.load_tf_keras(model_path), number_of_clusters=clusters, cluster_centroids_init=centroids)
    common.compile_for_labels(clustered, 1e-4)
    clustered.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0)
    tfmot.clustering.keras.strip_clustering(clustered).save(clustered_path)
    return clustered_path


def run(out: Path, epochs: int = 10, clusters: int = 16) -> dict:
    import tf_keras

    train_path, test_path = common.write_digits_data(out)
    tf_keras.utils.set_random_seed(0)
    x, y = common.load_xy(train_path)
    student = common.compile_for_labels(common.build_student())
    student.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0)
    student.save(out / "student.h5")
    clustered_path = cluster_model(out / "student.h5", train_path, out / "student_clustered.h5", clusters, max(1, epochs // 2))
    records = common.convert_and_bench(clustered_path, out, train_path, test_path, [("tflite", "fp32")])
    from edge_sdk.artifact import read_manifest

    manifest = read_manifest(out / "student_clustered_fp32.tflite")
    assert manifest is not None and manifest.weights is not None  # the converter wrote them
    layers = manifest.weights["layers"]
    for layer in layers:
        print(f"{layer['name']}: {layer['parameters']} weights, {layer['unique_values']} unique values")
    common.print_figures({"clustered_layers": len(layers), "max_unique_values": max(layer["unique_values"] for layer in layers)})
    return {"records": records, "layers": layers}


SMOKE = {"epochs": 2, "clusters": 8}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/clustering"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=16)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code (tests/examples run it)")
    args = parser.parse_args(argv)
    run(args.out, **(SMOKE if args.smoke else {"epochs": args.epochs, "clusters": args.clusters}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
