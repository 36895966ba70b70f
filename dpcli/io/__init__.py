"""Image, DP-pair and raw input; atomic output."""
from dpcli.io.images import Image, is_image_file, read_image, write_image

__all__ = ["Image", "is_image_file", "read_image", "write_image"]
