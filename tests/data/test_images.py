"""Tests for chainrule.data.images: image folders, loose image files and ImageSpec."""

import json
import sys
import warnings

import numpy as np
import pytest

from chainrule.data.datasets import make_image_folder
from chainrule.data.errors import DataError
from chainrule.data.images import ImageSpec, load_images, read_image_folder

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A generated 3-class folder (4 images per class, 16x16), shared read-only by the tests."""
    return make_image_folder(tmp_path_factory.mktemp("img") / "shapes", 4, size=16, n_classes=3)


def test_read_folder_shapes_range_and_labels(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, y, names = read_image_folder(folder, size=(12, 10))
    assert names == ["circle", "horizontal", "vertical"]
    assert X.shape == (12, 3, 12, 10) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0 and X.max() > 0.5
    assert y.dtype == np.int64 and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_grayscale_int_size_and_class_order(folder):
    X, y, names = read_image_folder(folder, size=8, grayscale=True, classes=["vertical", "circle"])
    assert X.shape == (8, 1, 8, 8) and names == ["vertical", "circle"]
    assert y.tolist() == [0] * 4 + [1] * 4


def test_matches_pillow_pixels(folder):
    X, _, _ = read_image_folder(folder, size=16)
    first = sorted((folder / "circle").iterdir())[0]
    expected = np.asarray(Image.open(first).convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_allclose(X[0], expected.transpose(2, 0, 1))


def test_folder_errors(tmp_path, folder):
    with pytest.raises(DataError, match="is not a directory; give a folder with one subfolder"):
        read_image_folder(tmp_path / "missing")
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match=r"has 1 class folder\(s\) \['only'\]; need at least 2"):
        read_image_folder(tmp_path)
    with pytest.raises(DataError, match=r"class folder\(s\) dog not found in .*; it has: circle"):
        read_image_folder(folder, classes=["circle", "dog"])
    for name in ("a", "b"):
        (tmp_path / "two" / name).mkdir(parents=True)
        (tmp_path / "two" / name / "note.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"no readable image in .*two \(2 file\(s\) tried\)"):
        read_image_folder(tmp_path / "two")


def test_unreadable_files_are_skipped_with_one_warning(tmp_path):
    root = make_image_folder(tmp_path / "imgs", 3, size=8)
    good = (root / "vertical" / "vertical_000.png").read_bytes()
    (root / "vertical" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "vertical" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "horizontal" / "README.txt").write_text("hello")
    (root / "horizontal" / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: ignored silently
    with pytest.warns(UserWarning, match=r"skipped 3 unreadable file\(s\) in .*imgs \(e\.g\. "
                                         r"README\.txt\)") as record:
        X, y, _ = read_image_folder(root, size=8)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert X.shape[0] == 6 and y.tolist() == [0, 0, 0, 1, 1, 1]


def test_other_modes_and_formats(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    pixels = rng.integers(0, 256, (9, 7, 4), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a" / "rgba.png")
    Image.fromarray(pixels[..., 0], "L").save(tmp_path / "a" / "gray.jpg")
    Image.fromarray(pixels[..., :3]).convert("P").save(tmp_path / "b" / "palette.gif")
    Image.fromarray(pixels[..., :3]).save(tmp_path / "b" / "plain.bmp")
    X, y, _ = read_image_folder(tmp_path, size=(5, 6))
    assert X.shape == (4, 3, 5, 6) and y.tolist() == [0, 0, 1, 1]
    gray, _, _ = read_image_folder(tmp_path, size=(5, 6), grayscale=True)
    assert gray.shape == (4, 1, 5, 6)


def test_load_images_files_folder_and_skips(tmp_path, folder):
    files = sorted((folder / "horizontal").iterdir())[:2]
    X, paths = load_images(files, size=16)
    assert X.shape == (2, 3, 16, 16) and paths == [str(f) for f in files]
    X1, paths1 = load_images(str(files[1]), size=16)
    np.testing.assert_array_equal(X1[0], X[1])
    assert paths1 == [str(files[1])]
    X_all, paths_all = load_images(folder / "circle", size=16, grayscale=True)
    assert X_all.shape == (4, 1, 16, 16) and all("circle" in p for p in paths_all)
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file\(s\) in the given files "
                                         r"\(e\.g\. junk\.jpg\)"):
        X, paths = load_images([tmp_path / "junk.jpg", files[0]], size=16)
    assert paths == [str(files[0])]


def test_load_images_errors(tmp_path):
    with pytest.raises(DataError, match="no image paths given"):
        load_images([])
    with pytest.raises(DataError, match="nope.png is not a file; check the path"):
        load_images([tmp_path / "nope.png"])
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"no readable image in .* \(1 file\(s\) tried\)"):
        load_images(tmp_path / "junk.png")
    with pytest.raises(ValueError, match=r"size must be an int or \(height, width\) of positive"):
        load_images(tmp_path, size=(0, 4))
    with pytest.raises(ValueError, match="size must be"):
        load_images(tmp_path, size="32")


def test_image_spec_round_trip_and_load(folder):
    spec = ImageSpec(size=12, grayscale=True, class_names=["circle", "horizontal", "vertical"])
    assert spec.size == (12, 12) and spec.channels == 1 and ImageSpec().channels == 3
    again = ImageSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    X, _ = again.load(folder / "vertical")
    X_ref, _, _ = read_image_folder(folder, size=12, grayscale=True)
    np.testing.assert_array_equal(X, X_ref[8:])
    with pytest.raises(DataError, match="not a saved ImageSpec"):
        ImageSpec.from_dict({"size": [8, 8]})


def test_missing_pillow_says_how_to_install(monkeypatch, folder):
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r'Pillow is needed .*pip install "chainrule\[full\]"'):
        read_image_folder(folder)
