"""Images for classification: tiny hand-drawn files whose pixels are known, and sklearn's bundled digits."""

import numpy as np
import pytest
from PIL import Image

from seqlab.data.images import image_files, load_digits, load_image_folder, read_image, read_image_and_size
from seqlab.errors import DataError


def test_load_digits():
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels, names = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    assert labels.dtype == np.int64 and names == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert images.min() == 0.0 and images.max() == 1.0  # pixel values 0-16, scaled by 1/16
    digits = sklearn_digits()
    np.testing.assert_array_equal(images[5, 0] * 16, digits.images[5])
    np.testing.assert_array_equal(labels, digits.target)


def save(path, mode, size, pixels, **options):
    image = Image.new(mode, size)
    image.putdata(pixels)
    image.save(path, **options)
    return path


def test_rgb_image_is_channels_first(tmp_path):
    # 2 wide, 2 high; size 2 keeps every pixel as it is.
    path = save(tmp_path / "a.png", "RGB", (2, 2), [(255, 0, 51), (0, 102, 0), (0, 0, 204), (255, 255, 255)])
    array, own_size = read_image_and_size(path, 2, grey=False)
    assert own_size == (2, 2) and array.shape == (3, 2, 2) and array.dtype == np.float32
    np.testing.assert_allclose(array, np.array([[[1, 0], [0, 1]], [[0, 0.4], [0, 1]], [[0.2, 0], [0.8, 1]]]),
                               rtol=1e-6)
    np.testing.assert_array_equal(read_image(path, 2, grey=False), array)


def test_resized_and_grey_images(tmp_path):
    path = save(tmp_path / "wide.png", "RGB", (3, 2), [(51, 102, 204)] * 6)
    array, own_size = read_image_and_size(path, 4, grey=False)
    assert own_size == (3, 2) and array.shape == (3, 4, 4)
    np.testing.assert_allclose(array[:, 1, 2], [0.2, 0.4, 0.8], rtol=1e-6)
    red = save(tmp_path / "red.png", "RGB", (2, 2), [(255, 0, 0)] * 4)
    grey = read_image(red, 3, grey=True)
    assert grey.shape == (1, 3, 3) and grey.dtype == np.float32
    np.testing.assert_allclose(grey, np.full((1, 3, 3), 76 / 255), rtol=1e-6)  # ITU-R 601-2: 0.299 * 255
    light = save(tmp_path / "light.png", "L", (2, 2), [255] * 4)  # a grey file read as colour: 3 equal channels
    np.testing.assert_allclose(read_image(light, 2, grey=False), np.ones((3, 2, 2)))


@pytest.mark.filterwarnings("ignore:Palette images with Transparency")
def test_palette_image_with_per_entry_transparency_is_read(tmp_path):
    image = Image.new("P", (2, 2))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([0, 1, 1, 0])
    # Pillow warns converting it to RGB (the alpha values are dropped): a warning, not an unreadable image.
    image.save(tmp_path / "p.png", transparency=bytes([128, 64]))
    array = read_image(tmp_path / "p.png", 2, grey=False)
    np.testing.assert_allclose(array[:, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(array[:, 0, 1], [0, 0, 1])


@pytest.mark.parametrize("dtype, name, mode", [(np.uint16, "g.png", "I;16"), (np.int32, "g.tif", "I")])
def test_a_16_bit_grey_image_is_scaled_not_clipped(tmp_path, dtype, name, mode):
    # 30,000 of 65,535 is 46.8 % grey: Pillow's own conversion to 8 bits would clip it to white.
    values = np.zeros((4, 4), dtype)
    values[1:3, 1:3], values[0, 0] = 30000, 65535
    Image.fromarray(values).save(tmp_path / name)
    assert Image.open(tmp_path / name).mode == mode
    for grey, channels in ((True, 1), (False, 3)):
        image = read_image(tmp_path / name, 4, grey)
        assert image.shape == (channels, 4, 4)
        np.testing.assert_allclose(image[:, 1:3, 1:3], round(30000 * 255 / 65535) / 255)
        assert (image[:, 0, 0] == 1.0).all() and (image[:, 3, 3] == 0.0).all()


def test_unreadable_image(tmp_path):
    (tmp_path / "fake.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read image .*fake.png: "):
        read_image(tmp_path / "fake.png", 4, grey=True)


@pytest.mark.parametrize("side, declared", [(4, "16 pixels"), (5, "25 pixels")])
def test_decompression_bombs_are_refused(tmp_path, monkeypatch, side, declared):
    # Over MAX_IMAGE_PIXELS Pillow warns, over twice that it raises: both are refused.
    path = save(tmp_path / "big.png", "L", (side, side), [0] * side * side)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(DataError, match=f"image .*big.png declares {declared}, more than the 10 that are read "
                                        r"\(a decompression bomb\?\); shrink it"):
        read_image(path, 2, grey=True)


def test_decompression_bomb_message_without_a_pixel_count(tmp_path, monkeypatch):
    def refuse(path):
        raise Image.DecompressionBombError("image too large")

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(DataError, match="declares too many pixels, more than the "):
        read_image(tmp_path / "any.png", 2, grey=True)


def class_folders(root, layout):
    """layout: {folder: [(file name, grey value)]}; non-image names are written as text."""
    for folder, files in layout.items():
        (root / folder).mkdir(parents=True)
        for name, value in files:
            if value is None:
                (root / folder / name).write_text("not an image")
            else:
                save(root / folder / name, "L", (2, 2), [value] * 4)
    return root


def test_image_files_sorted_classes_and_image_suffixes(tmp_path):
    root = class_folders(tmp_path, {"dogs": [("b.png", 0), ("a.JPG", 0), ("notes.txt", None)],
                                    "cats": [("c.png", 0)], "empty": [("readme.md", None)],
                                    ".hidden": [("h.png", 0)]})
    (root / "stray.png").write_text("a file beside the class folders")
    files = image_files(root)
    assert list(files) == ["cats", "dogs"]
    assert files == {"cats": [root / "cats" / "c.png"], "dogs": [root / "dogs" / "a.JPG", root / "dogs" / "b.png"]}


def test_image_files_errors(tmp_path):
    with pytest.raises(DataError, match="image folder not found: .*nowhere"):
        image_files(tmp_path / "nowhere")
    (tmp_path / "photo.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"photo.png is a file; give a folder with one sub-folder of images per class"):
        image_files(tmp_path / "photo.png")  # it used to say the folder was not found
    root = class_folders(tmp_path / "one", {"cats": [("c.png", 0)]})
    with pytest.raises(DataError, match="one needs at least two sub-folders of images, one per class; found 1 "
                                        r"\(cats\)$"):
        image_files(root)
    assert list(image_files(root, min_classes=1)) == ["cats"]
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match=r"none needs at least one sub-folder of images, one per class; found 0 "
                                        r"\(none\)$"):
        image_files(tmp_path / "none", min_classes=1)
    root = class_folders(tmp_path / "two", {"cats": [("c.png", 0)], "dogs": [("d.png", 0)]})
    with pytest.raises(DataError, match=r"two needs at least two sub-folders .* found 2 \(cats, dogs\)$"):
        image_files(root, min_classes=3)


def test_load_image_folder(tmp_path):
    root = class_folders(tmp_path, {"b": [("1.png", 255)], "a": [("2.png", 51), ("1.png", 102)]})
    images, labels, names = load_image_folder(root, 3, grey=True)
    assert names == ["a", "b"] and labels.dtype == np.int64 and labels.tolist() == [0, 0, 1]
    assert images.shape == (3, 1, 3, 3) and images.dtype == np.float32
    np.testing.assert_allclose(images[:, 0, 1, 1], [0.4, 0.2, 1.0], rtol=1e-6)  # a/1.png, a/2.png, b/1.png
    colour, _, _ = load_image_folder(root, 2, grey=False)
    assert colour.shape == (3, 3, 2, 2)
