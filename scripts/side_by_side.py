"""Pictures side by side, each under its caption: python scripts/side_by_side.py OUT.png A.png "caption" B.png ..."""
import sys

from PIL import Image, ImageDraw

from dcgan_mnist.util import save_picture

CAPTION_HEIGHT = 16
GAP = 12


def side_by_side(pictures, captions):
    width = sum(p.width for p in pictures) + GAP * (len(pictures) + 1)
    height = max(p.height for p in pictures) + CAPTION_HEIGHT + 2 * GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    left = GAP
    for picture, caption in zip(pictures, captions):
        draw.text((left, GAP // 2), caption, fill="black")
        canvas.paste(picture.convert("RGB"), (left, GAP + CAPTION_HEIGHT))
        left += picture.width + GAP
    return canvas


if __name__ == "__main__":
    out, rest = sys.argv[1], sys.argv[2:]
    pictures = [Image.open(path) for path in rest[0::2]]
    save_picture(side_by_side(pictures, rest[1::2]), out)
