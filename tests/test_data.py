import numpy as np
import pytest

from edge_sdk.data import Dataset, InputBinding, PreprocessSpec, parse_scale
from edge_sdk.errors import DataError, UsageError


def test_npz_streams_preprocessed_samples_with_labels(tmp_path):
    x = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(5))
    dataset = Dataset(tmp_path / "d.npz", PreprocessSpec(scale=0.5, layout="NHWC"))
    samples = list(dataset.samples())
    assert dataset.num_samples == 5 and dataset.has_labels
    assert [s.label for s in samples] == [0, 1, 2, 3, 4]
    assert samples[2].inputs["x"].shape == (4, 4, 1)
    np.testing.assert_allclose(samples[2].inputs["x"][..., 0], x[2] * 0.5)


def test_compressed_npz_and_mnist_style_keys(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, size=(300, 6, 6), dtype=np.uint8)
    np.savez_compressed(tmp_path / "m.npz", x_test=x, y_test=np.arange(300) % 10)
    dataset = Dataset(tmp_path / "m.npz", PreprocessSpec(scale=1 / 255))
    chosen = dataset.subset(7, seed=3)
    assert chosen == dataset.subset(7, seed=3) and chosen != dataset.subset(7, seed=4)
    got = {s.index: s for s in dataset.samples(chosen)}
    assert sorted(got) == chosen
    for index in chosen:
        np.testing.assert_allclose(got[index].inputs["x_test"], x[index] / 255, rtol=1e-6)
        assert got[index].label == index % 10


def test_npy_and_nchw_layout(tmp_path):
    x = np.random.default_rng(0).random((3, 5, 6, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    spec = PreprocessSpec(layout="NCHW", source_layout="NHWC", mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    sample = next(iter(Dataset(tmp_path / "x.npy", spec).samples()))
    assert sample.inputs["x"].shape == (3, 5, 6)
    np.testing.assert_allclose(sample.inputs["x"], (np.transpose(x[0], (2, 0, 1)) - 0.5) / 0.25, rtol=1e-6)
    assert sample.label is None


def test_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image

    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(np.full((10, 12, 3), 40 * (label + 1) + i, np.uint8)).save(tmp_path / name / f"{i}.png")
    dataset = Dataset(tmp_path, PreprocessSpec(resize=[4, 5], scale=1 / 255, color="rgb"))
    samples = list(dataset.samples())
    assert dataset.class_names == ["cat", "dog"] and [s.label for s in samples] == [0, 0, 1, 1]
    assert samples[0].inputs["image"].shape == (4, 5, 3)
    assert samples[3].inputs["image"][0, 0, 0] == pytest.approx(81 / 255)


def test_binding_fits_singleton_axes_and_rejects_wrong_shapes(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 8, 8), np.float32))
    dataset = Dataset(tmp_path / "d.npz", PreprocessSpec())
    binding = InputBinding.bind(dataset, [("input", (1, 8, 8, 1))])
    fitted = binding.fit(next(iter(dataset.samples())), "d.npz")
    assert fitted["input"].shape == (1, 8, 8, 1)
    wrong = InputBinding.bind(dataset, [("input", (1, 28, 28, 1))])
    with pytest.raises(DataError, match=r"(?s)d.npz sample 0 for input 'input' has shape \(8, 8\).*expects \(28, 28, 1\)"):
        wrong.fit(next(iter(dataset.samples())), "d.npz")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((0, 4), np.float32)}, "contains 0 samples"),
        ({"x": np.array([["a", "b"]])}, "not a numeric type"),
        ({"x": np.zeros((3, 4), np.float32), "y": np.zeros(2)}, "has 3 samples but 2 labels"),
    ],
)
def test_bad_data_files(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as error:
        Dataset(tmp_path / "bad.npz", PreprocessSpec())
    assert "bad.npz" in str(error.value)


def test_nan_and_inf_are_reported_with_the_sample(tmp_path):
    x = np.zeros((4, 3), np.float32)
    x[2, 1] = np.inf
    np.savez(tmp_path / "d.npz", x=x)
    with pytest.raises(DataError, match=r"d.npz:x\[2\] contains NaN or Inf"):
        list(Dataset(tmp_path / "d.npz", PreprocessSpec()).samples())


def test_object_arrays_are_refused_without_pickle(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickle"):
        Dataset(tmp_path / "o.npy", PreprocessSpec())


def test_truncated_npy_and_not_data(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((100, 10), np.float32))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        list(Dataset(tmp_path / "t.npy", PreprocessSpec()).samples())
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a .npz, .npy or a folder"):
        Dataset(tmp_path / "notes.txt", PreprocessSpec())
    with pytest.raises(DataError, match="does not exist"):
        Dataset(tmp_path / "missing.npz", PreprocessSpec())


def test_spec_validation_and_scale_parsing():
    assert parse_scale("1/255") == pytest.approx(1 / 255)
    with pytest.raises(UsageError):
        parse_scale("one/two")
    with pytest.raises(UsageError, match="layout"):
        PreprocessSpec(layout="HWC")
    with pytest.raises(UsageError, match="unknown preprocessing keys: colour"):
        PreprocessSpec.from_dict({"colour": "rgb"})
    assert PreprocessSpec.from_dict(PreprocessSpec(scale=0.5).to_dict()) == PreprocessSpec(scale=0.5)
